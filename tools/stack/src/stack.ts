import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { redact } from './database.ts';
import { StackError } from './errors.ts';
import { exportLines } from './exec.ts';
import { type KafkaHandle, startKafka } from './kafka.ts';
import { type KafkaCluster, startKafkaCluster } from './kafka-cluster.ts';
import { pgVersion } from './pg-binaries.ts';
import { type PostgresHandle, startPostgres } from './postgres.ts';

export interface Stack {
  databaseUrl: string;
  kafkaBrokers: string[];
  postgres: PostgresHandle;
  kafka: KafkaHandle;
  /** The same Kafka with per-node control, when the harness started a cluster (kafkaNodes: 3). */
  kafkaCluster: KafkaCluster | null;
  /** Stops what the harness started; services from the environment are left alone. */
  stop(): Promise<void>;
}

/** How many Kafka nodes the harness runs: one broker (fast), or a 3-node cluster (replication, fault tests). */
export type KafkaNodes = 1 | 3;

/** Writes the stack's coordinates to <dir>/stack.env (export lines, for `source`) and returns them. */
export async function publishStackEnv(stack: Stack, dir: string): Promise<Record<string, string>> {
  const env = { DATABASE_URL: stack.databaseUrl, KAFKA_BROKERS: stack.kafkaBrokers.join(',') };
  await writeFile(path.join(dir, 'stack.env'), `${exportLines(env).join('\n')}\n`);
  return env;
}

/**
 * Postgres and Kafka for dev and tests, under `dir`. A service named in `env`
 * (DATABASE_URL; KAFKA_BROKERS, comma-separated) is used as is and never
 * started or stopped; otherwise the harness starts its own: one Kafka broker,
 * or with `kafkaNodes: 3` a 3-node KRaft cluster.
 */
export async function startStack(opts: {
  dir: string;
  env?: NodeJS.ProcessEnv;
  kafkaNodes?: KafkaNodes;
  log?: (line: string) => void;
}): Promise<Stack> {
  const env = opts.env ?? process.env;
  const services = { dir: opts.dir, ...(opts.log ? { log: opts.log } : {}) };
  // Validate the environment before starting anything.
  const givenPostgres = env.DATABASE_URL ? externalPostgres(env.DATABASE_URL) : undefined;
  // The server version comes from the process's own environment (chaos suites pass env: {}).
  if (!givenPostgres) pgVersion();
  const givenKafka = env.KAFKA_BROKERS ? externalKafka(env.KAFKA_BROKERS) : undefined;
  const nodes = opts.kafkaNodes ?? 1;
  const [postgres, kafka] = await Promise.allSettled([
    givenPostgres ?? startPostgres(services),
    givenKafka ?? (nodes === 1 ? startKafka(services) : startKafkaCluster({ ...services, nodes })),
  ] as const);
  if (postgres.status === 'rejected' || kafka.status === 'rejected') {
    // Do not leave the half that did start running.
    if (postgres.status === 'fulfilled' && postgres.value.owned) await postgres.value.stop().catch(() => {});
    if (kafka.status === 'fulfilled' && kafka.value.owned) await kafka.value.stop().catch(() => {});
    throw postgres.status === 'rejected' ? postgres.reason : (kafka as PromiseRejectedResult).reason;
  }
  const stack = { postgres: postgres.value, kafka: kafka.value };
  return {
    databaseUrl: stack.postgres.url,
    kafkaBrokers: stack.kafka.brokers,
    kafkaCluster: isCluster(stack.kafka) ? stack.kafka : null,
    ...stack,
    async stop() {
      const results = await Promise.allSettled([
        stack.kafka.owned ? stack.kafka.stop() : undefined,
        stack.postgres.owned ? stack.postgres.stop('fast') : undefined,
      ]);
      const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) throw failed.reason;
    },
  };
}

function isCluster(kafka: KafkaHandle | KafkaCluster): kafka is KafkaCluster {
  return 'nodes' in kafka;
}

function notOwned(service: string, variable: string, action: string): () => Promise<never> {
  return () =>
    Promise.reject(
      new StackError(
        'NOT_OWNED',
        `cannot ${action} ${service}: it comes from ${variable}, and the harness only controls what it started`,
      ),
    );
}

function externalPostgres(url: string): PostgresHandle {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch (error) {
    throw new StackError('BAD_ENV', `DATABASE_URL is not a URL: ${redact(url)}`, { cause: error });
  }
  if (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:') {
    throw new StackError('BAD_ENV', `DATABASE_URL must be postgres://…, got ${redact(url)}`);
  }
  return {
    url,
    // Used for CREATE DATABASE: the given database is as good a place to connect from as any.
    adminUrl: url,
    port: Number(parsed.port || 5432),
    dataDir: '',
    owned: false,
    stop: notOwned('Postgres', 'DATABASE_URL', 'stop'),
    start: notOwned('Postgres', 'DATABASE_URL', 'start'),
    restart: notOwned('Postgres', 'DATABASE_URL', 'restart'),
    kill: notOwned('Postgres', 'DATABASE_URL', 'kill'),
  };
}

function externalKafka(list: string): KafkaHandle {
  const brokers = list
    .split(',')
    .map((b) => b.trim())
    .filter(Boolean);
  const bad = brokers.find((b) => !/^[^\s:/]+:\d+$/.test(b) && !/^\[[0-9a-f:]+\]:\d+$/i.test(b));
  if (brokers.length === 0 || bad !== undefined) {
    throw new StackError('BAD_ENV', `KAFKA_BROKERS must be host:port[,host:port…], got "${list}"`);
  }
  return {
    brokers,
    owned: false,
    stop: notOwned('Kafka', 'KAFKA_BROKERS', 'stop'),
    start: notOwned('Kafka', 'KAFKA_BROKERS', 'start'),
    kill: notOwned('Kafka', 'KAFKA_BROKERS', 'kill'),
  };
}
