import { OpenAPIHono } from '@hono/zod-openapi';
import { childSpan, formatTraceparent, parseTraceparent, TRACEPARENT } from '@walnut/schema';
import type { NodePgDatabase } from 'drizzle-orm/node-postgres';
import { bodyLimit } from 'hono/body-limit';
import { HTTPException } from 'hono/http-exception';
import { requestId } from 'hono/request-id';
import type pg from 'pg';
import type { Logger } from 'pino';
import type { AppEnv } from './app-env.ts';
import type { AppliedWaiters } from './applied-waiters.ts';
import { apiKeyAuth, registerSecuritySchemes } from './auth.ts';
import { DOCS_ASSETS_PATH, registerDocs } from './docs-routes.ts';
import { ApiError } from './errors.ts';
import { registerKvReads } from './kv-read-routes.ts';
import { registerKvWrites } from './kv-write-routes.ts';
import { type ApiMetrics, observe } from './metrics.ts';
import { registerOps } from './ops-routes.ts';
import { registerStatus } from './status-routes.ts';
import { validationHook } from './validation-hook.ts';
import { WriteBatcher } from './write-batcher.ts';

export interface AppOptions {
  db: NodePgDatabase;
  pool: pg.Pool;
  slot: string;
  log: Logger;
  metrics: ApiMetrics;
  waiters: AppliedWaiters;
  /** Empty: auth off. */
  apiKeys: readonly string[];
  maxBodyBytes: number;
  maxValueBytes: number;
  maxBatchOps: number;
  /** Group commit of writes without an Idempotency-Key; see WriteBatcher. */
  writeConcurrency: number;
  writeBatchMaxOps: number;
  readAfterTimeoutMs: number;
  /** True once SIGTERM arrived: /ready fails and responses close their connection. */
  draining: () => boolean;
}

export function createApp(opts: AppOptions) {
  const app = new OpenAPIHono<AppEnv>({ defaultHook: validationHook });

  app.use(requestId({ headerName: 'X-Request-Id', limitLength: 128 }));
  app.use(async (c, next) => {
    const span = childSpan(parseTraceparent(c.req.header(TRACEPARENT)));
    c.set('trace', span);
    c.set(
      'log',
      opts.log.child({
        request_id: c.get('requestId'),
        trace_id: span.traceId,
        span_id: span.spanId,
        parent_span_id: span.parentSpanId,
      }),
    );
    // Trace Context Level 2: tells a caller that sent no traceparent which trace its write joined.
    c.header('traceresponse', formatTraceparent(span));
    // While draining, a kept-alive connection is closed after its response, so
    // the server's close() does not wait for idle keep-alive timeouts.
    if (opts.draining()) c.header('Connection', 'close');
    await next();
  });
  app.use(observe(opts.metrics));
  app.use(apiKeyAuth(opts.apiKeys));
  // Size before parsing: a body over the limit is refused while it streams in.
  const streamedBodyLimit = bodyLimit({
    maxSize: opts.maxBodyBytes,
    onError: () => {
      throw new ApiError(413, 'BODY_TOO_LARGE', `request body exceeds ${opts.maxBodyBytes} bytes`);
    },
  });
  app.use((c, next) => {
    // A body with a Content-Length is judged by the header, as bodyLimit does, but
    // without touching c.req.raw.body: that turns @hono/node-server's light request
    // into a full undici Request (a ReadableStream and an AbortSignal per request),
    // which was a tenth of the API's CPU per write. Without Transfer-Encoding,
    // Node's parser reads exactly Content-Length bytes (none when it is absent),
    // so the header is the body's size.
    if (c.req.header('transfer-encoding') !== undefined) return streamedBodyLimit(c, next);
    if (c.req.method === 'GET' || c.req.method === 'HEAD') return next();
    if (Number.parseInt(c.req.header('content-length') ?? '0', 10) > opts.maxBodyBytes)
      throw new ApiError(413, 'BODY_TOO_LARGE', `request body exceeds ${opts.maxBodyBytes} bytes`);
    return next();
  });
  app.use(async (c, next) => {
    if (['POST', 'PUT', 'PATCH'].includes(c.req.method)) {
      const type = c.req.header('content-type') ?? '';
      if (!/^application\/json\s*(;|$)/i.test(type)) {
        throw new ApiError(415, 'UNSUPPORTED_MEDIA_TYPE', 'send the body as application/json', {
          content_type: type || null,
        });
      }
    }
    await next();
  });

  registerSecuritySchemes(app);
  const batcher = WriteBatcher.forDatabase(opts.db, {
    maxConcurrentCommits: opts.writeConcurrency,
    maxOpsPerCommit: opts.writeBatchMaxOps,
  });
  registerKvWrites(app, opts.db, batcher, { maxValueBytes: opts.maxValueBytes, maxBatchOps: opts.maxBatchOps });
  registerKvReads(app, opts.db, opts.waiters, opts.readAfterTimeoutMs);
  registerStatus(app, opts.db, opts.slot);
  registerOps(app, { pool: opts.pool, metrics: opts.metrics, draining: opts.draining });
  app.doc31('/openapi.json', {
    openapi: '3.1.0',
    info: {
      title: 'Walnut API',
      version: '0.1.0',
      description:
        'A key-value service whose writes go through a transactional outbox, logical replication and Kafka. ' +
        'Every error is `{"error":{"code","message","details"}}`.',
    },
  });
  registerDocs(app, '/openapi.json');

  app.notFound((c) => {
    const allowed = allowedMethods(app, c.req.path);
    if (allowed.length > 0) {
      c.header('Allow', allowed.join(', '));
      throw new ApiError(405, 'METHOD_NOT_ALLOWED', `${c.req.method} is not allowed here`, { allow: allowed });
    }
    throw new ApiError(404, 'NOT_FOUND', 'no such route');
  });
  app.onError((error, c) => {
    if (error instanceof ApiError) return c.json(error.toBody(), error.status);
    if (error instanceof HTTPException && error.status < 500) {
      // Hono's JSON validator throws 400 on a body that does not parse.
      const api = new ApiError(error.status, 'MALFORMED_REQUEST', error.message);
      return c.json(api.toBody(), api.status);
    }
    (c.get('log') ?? opts.log).error({ err: error, path: c.req.path }, 'request failed');
    return c.json(new ApiError(500, 'INTERNAL', 'internal error').toBody(), 500);
  });
  return app;
}

/** Methods the documented routes accept on a path, for a 405's Allow header. */
function allowedMethods(app: OpenAPIHono<AppEnv>, path: string): string[] {
  const methods = new Set<string>();
  for (const def of app.openAPIRegistry.definitions) {
    if (def.type !== 'route') continue;
    const pattern = new RegExp(`^${def.route.path.replace(/\{[^}]+\}/g, '[^/]+')}$`);
    if (pattern.test(path)) methods.add(def.route.method.toUpperCase());
  }
  if (path === '/openapi.json' || path === '/docs' || path.startsWith(`${DOCS_ASSETS_PATH}/`)) methods.add('GET');
  return [...methods].sort();
}
