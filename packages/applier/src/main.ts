import type { Server } from 'node:http';
import { listeningPort, serveOps, startRunnable } from '@walnut/runtime';
import { drizzle } from 'drizzle-orm/node-postgres';
import { Applier } from './applier.ts';
import { applierEnv, applierSecrets } from './config.ts';
import { ApplierMetrics } from './metrics.ts';
import { RetentionSweeper } from './retention.ts';

const { env, log, pgPool, onStop } = startRunnable({
  program: 'walnut-applier',
  schema: applierEnv,
  secrets: applierSecrets,
});
const pool = pgPool({ connectionString: env.DATABASE_URL, max: env.APPLIER_PG_POOL_MAX });
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
    offsetCommitIntervalMs: env.APPLIER_OFFSET_COMMIT_INTERVAL_MS,
  },
  log,
  (error) => {
    // A stopped applier must not look alive: exit, and let the supervisor restart it.
    log.fatal({ err: error, code: error.code }, error.message);
    process.exit(1);
  },
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

let server: Server;
try {
  server = await serveOps(
    { registry: metrics.registry, healthy: () => applier.healthy },
    env.APPLIER_HTTP_PORT,
    env.APPLIER_HTTP_HOST,
  );
} catch (error) {
  log.fatal(
    { err: error },
    `cannot listen on ${env.APPLIER_HTTP_HOST}:${env.APPLIER_HTTP_PORT}: set APPLIER_HTTP_PORT`,
  );
  process.exit(1);
}
log.info({ port: listeningPort(server) }, 'applier http listening');

// The pool ends after this, in runnable-startup.ts.
onStop(async () => {
  await retention.stop();
  await applier.stop().catch((error) => log.error({ err: error }, 'stop failed'));
  server.close();
});

await applier.start();
retention.start();
