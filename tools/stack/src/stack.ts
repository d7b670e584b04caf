import { StackError } from './errors.ts';
import { type KafkaHandle, startKafka } from './kafka.ts';
import { type PostgresHandle, startPostgres } from './postgres.ts';

export interface Stack {
  databaseUrl: string;
  kafkaBrokers: string[];
  postgres: PostgresHandle;
  kafka: KafkaHandle;
  stop(): Promise<void>;
}

/**
 * Postgres and Kafka for dev and tests. A service named in the environment
 * (DATABASE_URL, KAFKA_BROKERS) is used as is and never started or stopped.
 */
export async function startStack(opts: {
  dir: string;
  env?: NodeJS.ProcessEnv;
  log?: (line: string) => void;
}): Promise<Stack> {
  const env = opts.env ?? process.env;
  const [postgres, kafka] = await Promise.all([
    env.DATABASE_URL ? Promise.resolve(externalPostgres(env.DATABASE_URL)) : startPostgres(opts),
    env.KAFKA_BROKERS ? Promise.resolve(externalKafka(env.KAFKA_BROKERS)) : startKafka(opts),
  ]);
  return {
    databaseUrl: postgres.url,
    kafkaBrokers: kafka.brokers,
    postgres,
    kafka,
    async stop() {
      if (kafka.owned) await kafka.stop();
      if (postgres.owned) await postgres.stop('fast');
    },
  };
}

function notOwned(what: string): () => Promise<never> {
  return () =>
    Promise.reject(new StackError('NOT_OWNED', `${what} comes from the environment; the harness does not control it`));
}

function externalPostgres(url: string): PostgresHandle {
  return {
    url,
    adminUrl: url,
    port: Number(new URL(url).port || 5432),
    dataDir: '',
    owned: false,
    stop: notOwned('DATABASE_URL'),
    start: notOwned('DATABASE_URL'),
    restart: notOwned('DATABASE_URL'),
  };
}

function externalKafka(brokers: string): KafkaHandle {
  return {
    brokers: brokers.split(',').map((b) => b.trim()),
    owned: false,
    stop: notOwned('KAFKA_BROKERS'),
    start: notOwned('KAFKA_BROKERS'),
    kill: notOwned('KAFKA_BROKERS'),
  };
}
