import { serve } from '@hono/node-server';
import { startRunnable } from '@walnut/runtime';
import { drizzle } from 'drizzle-orm/node-postgres';
import { createApp } from './app.ts';
import { AppliedWaiters } from './applied-waiters.ts';
import { apiEnv, apiSecrets } from './config.ts';
import { ApiMetrics } from './metrics.ts';

const { env, log, pgPool, onStop } = startRunnable({ program: 'walnut-api', schema: apiEnv, secrets: apiSecrets });
// node-postgres sends parameterized queries as unnamed statements, which PgBouncer
// in transaction mode supports; nothing here needs session state (no named
// prepared statements, no SET, no advisory locks; LISTEN has its own connection).
const pool = pgPool({
  connectionString: env.DATABASE_URL,
  max: env.API_PG_POOL_MAX,
  idleTimeoutMillis: env.API_PG_IDLE_TIMEOUT_MS,
  connectionTimeoutMillis: env.API_PG_CONNECT_TIMEOUT_MS,
});
const waiters = new AppliedWaiters({ listenUrl: env.API_LISTEN_DATABASE_URL, pool, log });
const metrics = new ApiMetrics(pool, env.API_PG_POOL_MAX, () => waiters.size);
let draining = false;

const app = createApp({
  db: drizzle(pool),
  pool,
  slot: env.RELAY_SLOT,
  log,
  metrics,
  waiters,
  apiKeys: env.API_KEYS,
  maxBodyBytes: env.API_MAX_BODY_BYTES,
  maxValueBytes: env.API_MAX_VALUE_BYTES,
  maxBatchOps: env.API_MAX_BATCH_OPS,
  writeConcurrency: env.API_WRITE_CONCURRENCY,
  writeBatchMaxOps: env.API_WRITE_BATCH_MAX_OPS,
  readAfterTimeoutMs: env.API_READ_AFTER_TIMEOUT_MS,
  draining: () => draining,
});

await waiters.start();
const server = serve({ fetch: app.fetch, port: env.API_PORT, hostname: env.API_HOST }, (info) => {
  log.info({ port: info.port, host: env.API_HOST, auth: env.API_KEYS.length > 0 }, 'api listening');
});

/**
 * SIGTERM drains: the listener closes (new connections are refused), requests
 * in flight run to completion, idle keep-alive connections are closed, then the
 * LISTEN session ends (and the pool, in runnable-startup.ts). Past
 * API_SHUTDOWN_TIMEOUT_MS the remaining connections are cut.
 */
onStop(async () => {
  draining = true;
  log.info({ timeoutMs: env.API_SHUTDOWN_TIMEOUT_MS }, 'draining');
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  const sweep = setInterval(() => 'closeIdleConnections' in server && server.closeIdleConnections(), 100);
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), env.API_SHUTDOWN_TIMEOUT_MS);
  });
  const outcome = await Promise.race([closed, timedOut]);
  clearInterval(sweep);
  clearTimeout(timer);
  if (outcome === 'timeout') {
    log.warn({ timeoutMs: env.API_SHUTDOWN_TIMEOUT_MS }, 'requests still in flight at the shutdown timeout; cutting');
    if ('closeAllConnections' in server) server.closeAllConnections();
  }
  await waiters.stop();
});
