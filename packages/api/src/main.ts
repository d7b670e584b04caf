import { serve } from '@hono/node-server';
import { createLogger, parseEnv } from '@walnut/runtime';
import { createPgPool } from '@walnut/schema';
import { drizzle } from 'drizzle-orm/node-postgres';
import { createApp } from './app.ts';
import { AppliedWaiters } from './applied-waiters.ts';
import { apiEnv } from './config.ts';
import { ApiMetrics } from './metrics.ts';

const parsed = parseEnv('walnut-api', apiEnv, process.env);
if (!parsed.ok) {
  for (const line of parsed.errors) console.error(line);
  process.exit(2);
}
const env = parsed.env;
const log = createLogger('walnut-api', env.LOG_LEVEL);
// node-postgres sends parameterized queries as unnamed statements, which PgBouncer
// in transaction mode supports; nothing here needs session state (no named
// prepared statements, no SET, no advisory locks; LISTEN has its own connection).
const pool = createPgPool({
  connectionString: env.DATABASE_URL,
  max: env.API_PG_POOL_MAX,
  idleTimeoutMillis: env.API_PG_IDLE_TIMEOUT_MS,
  connectionTimeoutMillis: env.API_PG_CONNECT_TIMEOUT_MS,
  onError: (error) => log.warn({ err: error }, 'Postgres connection failed'),
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
 * pools end. Past API_SHUTDOWN_TIMEOUT_MS the remaining connections are cut.
 */
async function shutdown(signal: NodeJS.Signals): Promise<void> {
  draining = true;
  log.info({ signal }, 'draining');
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
  await pool.end();
  log.info('stopped');
  process.exit(0);
}

for (const signal of ['SIGTERM', 'SIGINT'] as const) process.once(signal, (s) => void shutdown(s));
