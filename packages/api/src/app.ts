import type { NodePgDatabase } from 'drizzle-orm/node-postgres';
import { Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { HTTPException } from 'hono/http-exception';
import type { Logger } from 'pino';
import { ApiError } from './errors.ts';
import { kvRoutes } from './kv-routes.ts';
import { statusRoutes } from './status-routes.ts';

export interface AppOptions {
  db: NodePgDatabase;
  slot: string;
  maxBodyBytes: number;
  log: Logger;
}

export function createApp({ db, slot, maxBodyBytes, log }: AppOptions) {
  const app = new Hono();
  app.use(
    '*',
    bodyLimit({
      maxSize: maxBodyBytes,
      onError: () => {
        throw new ApiError(413, 'BODY_TOO_LARGE', `request body exceeds ${maxBodyBytes} bytes`);
      },
    }),
  );
  app.use('*', async (c, next) => {
    if (['POST', 'PUT', 'PATCH'].includes(c.req.method)) {
      const type = c.req.header('content-type') ?? '';
      if (!/^application\/json\b/i.test(type)) {
        throw new ApiError(415, 'UNSUPPORTED_MEDIA_TYPE', 'send the body as application/json');
      }
    }
    await next();
  });
  app.get('/health', (c) => c.json({ status: 'ok' }));
  app.route('/kv', kvRoutes(db));
  app.route('/status', statusRoutes(db, slot));
  app.notFound(() => {
    throw new ApiError(404, 'NOT_FOUND', 'no such route');
  });
  app.onError((error, c) => {
    if (error instanceof ApiError) return c.json(error.toBody(), error.status);
    if (error instanceof HTTPException && error.status < 500) {
      // Hono's JSON validator throws 400 on a body that does not parse.
      const api = new ApiError(error.status, 'MALFORMED_REQUEST', error.message);
      return c.json(api.toBody(), api.status);
    }
    log.error({ err: error, path: c.req.path }, 'request failed');
    return c.json(new ApiError(500, 'INTERNAL', 'internal error').toBody(), 500);
  });
  return app;
}
