import { drizzle } from 'drizzle-orm/node-postgres';
import { createPgPool } from '@walnut/schema';
import pino from 'pino';
import { Applier } from './applier.ts';
import { applierEnv } from './config.ts';

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

const applier = new Applier(
  drizzle(pool),
  {
    brokers: env.KAFKA_BROKERS,
    topic: env.KV_TOPIC,
    dlqTopic: env.APPLIER_DLQ_TOPIC ?? `${env.KV_TOPIC}.dlq`,
    groupId: env.APPLIER_GROUP_ID,
    topicPartitions: env.APPLIER_TOPIC_PARTITIONS,
  },
  log,
);

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, async () => {
    log.info({ signal }, 'stopping');
    await applier.stop().catch((error) => log.error({ err: error }, 'stop failed'));
    await pool.end();
    process.exit(0);
  });
}

await applier.start();
