import { serve } from '@hono/node-server';
import { drizzle } from 'drizzle-orm/node-postgres';
import { createPgPool } from '@walnut/schema';
import pino from 'pino';
import { createApp } from './app.ts';
import { apiEnv } from './config.ts';

const parsed = apiEnv.safeParse(process.env);
if (!parsed.success) {
  for (const issue of parsed.error.issues) console.error(`walnut-api: ${issue.path.join('.')}: ${issue.message}`);
  process.exit(2);
}
const env = parsed.data;
const log = pino({ name: 'walnut-api', level: env.LOG_LEVEL });
const pool = createPgPool({
  connectionString: env.DATABASE_URL,
  max: env.API_PG_POOL_MAX,
  onError: (error) => log.warn({ err: error }, 'Postgres connection failed'),
});

const app = createApp({ db: drizzle(pool), slot: env.RELAY_SLOT, maxBodyBytes: env.API_MAX_BODY_BYTES, log });
const server = serve({ fetch: app.fetch, port: env.API_PORT, hostname: env.API_HOST }, (info) => {
  log.info({ port: info.port, host: env.API_HOST }, 'api listening');
});

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, () => {
    log.info({ signal }, 'stopping');
    server.close(async () => {
      await pool.end();
      process.exit(0);
    });
  });
}
