import { createRoute, type OpenAPIHono, z } from '@hono/zod-openapi';
import type pg from 'pg';
import type { AppEnv } from './app-env.ts';
import { ApiError } from './errors.ts';
import type { ApiMetrics } from './metrics.ts';
import { errors } from './schemas.ts';

const statusBody = (example: string) =>
  z.object({ status: z.string().openapi({ example }) }).openapi({ description: 'Probe result' });

/** Probes and metrics; open even when API keys are on. */
export function registerOps(
  app: OpenAPIHono<AppEnv>,
  deps: { pool: pg.Pool; metrics: ApiMetrics; draining: () => boolean },
): void {
  app.openapi(
    createRoute({
      method: 'get',
      path: '/health',
      summary: 'Liveness: the process answers',
      responses: { 200: { description: 'Alive', content: { 'application/json': { schema: statusBody('ok') } } } },
    }),
    (c) => c.json({ status: 'ok' }, 200),
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/ready',
      summary: 'Readiness: Postgres answers and the process is not shutting down',
      responses: {
        200: { description: 'Ready', content: { 'application/json': { schema: statusBody('ready') } } },
        ...errors(503),
      },
    }),
    async (c) => {
      if (deps.draining()) throw new ApiError(503, 'SHUTTING_DOWN', 'the API is draining before exit');
      try {
        await deps.pool.query('SELECT 1');
      } catch (error) {
        // /ready is open: Postgres's text (host, port, role, "password authentication
        // failed") is for the log, not for whoever asks.
        c.get('log').warn({ err: error }, 'readiness: Postgres does not answer');
        throw new ApiError(503, 'DATABASE_UNREACHABLE', 'Postgres does not answer; the reason is in the API log');
      }
      return c.json({ status: 'ready' }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/metrics',
      summary: 'Prometheus metrics',
      responses: { 200: { description: 'Prometheus text format', content: { 'text/plain': { schema: z.string() } } } },
    }),
    async (c) =>
      c.text(await deps.metrics.registry.metrics(), 200, { 'content-type': deps.metrics.registry.contentType }),
  );
}
