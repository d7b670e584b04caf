import { createPgPool } from '@walnut/schema';
import { drizzle } from 'drizzle-orm/node-postgres';
import pino from 'pino';
import { Applier } from './applier.ts';
import { applierEnv } from './config.ts';
import { startHttpServer } from './http-server.ts';
import { ApplierMetrics } from './metrics.ts';
import { RetentionSweeper } from './retention.ts';

const parsed = applierEnv.safeParse(process.env);
if (!parsed.success) {
  for (const issue of parsed.error.issues) console.error(`walnut-applier: ${issue.path.join('.')}: ${issue.message}`);
  process.exit(2);
}
const env = parsed.data;
const log = pino({ name: 'walnut-applier', level: env.LOG_LEVEL });
const pool = createPgPool({
  connectionString: env.DATABASE_URL,
  max: env.APPLIER_PG_POOL_MAX,
  onError: (error) => log.warn({ err: error }, 'Postgres connection failed'),
});
const db = drizzle(pool);

const metrics: ApplierMetrics = new ApplierMetrics(
  () => applier.readLag(),
  (error) => log.warn({ err: error }, 'could not read consumer lag'),
);
const applier: Applier = new Applier(
  db,
  {
    brokers: env.KAFKA_BROKERS,
    topic: env.KV_TOPIC,
    dlqTopic: env.APPLIER_DLQ_TOPIC ?? `${env.KV_TOPIC}.dlq`,
    groupId: env.APPLIER_GROUP_ID,
    topicPartitions: env.APPLIER_TOPIC_PARTITIONS,
  },
  log,
  metrics,
);
const retention = new RetentionSweeper(
  db,
  {
    outboxRetentionSeconds: env.APPLIER_OUTBOX_RETENTION_SECONDS,
    idempotencyRetentionSeconds: env.APPLIER_IDEMPOTENCY_RETENTION_SECONDS,
    requestRetentionSeconds: env.APPLIER_REQUEST_RETENTION_SECONDS,
    intervalMs: env.APPLIER_RETENTION_INTERVAL_MS,
    batchRows: env.APPLIER_RETENTION_BATCH_ROWS,
  },
  log,
  (rows) => metrics.outboxDeleted.inc(rows),
);

let server: Awaited<ReturnType<typeof startHttpServer>>;
try {
  server = await startHttpServer({
    port: env.APPLIER_HTTP_PORT,
    host: env.APPLIER_HTTP_HOST,
    registry: metrics.registry,
    healthy: () => applier.healthy,
  });
} catch (error) {
  log.fatal(
    { err: error },
    `cannot listen on ${env.APPLIER_HTTP_HOST}:${env.APPLIER_HTTP_PORT}: set APPLIER_HTTP_PORT`,
  );
  process.exit(1);
}
const address = server.address();
log.info({ port: typeof address === 'object' ? address?.port : address }, 'applier http listening');

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, async () => {
    log.info({ signal }, 'stopping');
    await retention.stop();
    await applier.stop().catch((error) => log.error({ err: error }, 'stop failed'));
    server.close();
    await pool.end();
    process.exit(0);
  });
}

await applier.start();
retention.start();
