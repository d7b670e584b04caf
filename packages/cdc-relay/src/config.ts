import { z } from 'zod';
import type { OutboxMapping } from './outbox-mapping.ts';

const csv = z.string().transform((s) =>
  s
    .split(',')
    .map((part) => part.trim())
    .filter(Boolean),
);
const int = (min: number) => z.coerce.number().int().min(min);
const identifier = z.string().regex(/^[A-Za-z_][A-Za-z0-9_$]*$/, 'must be a plain SQL identifier');

/**
 * Everything the relay reads from its environment, parsed once at start.
 * Names of env vars are the keys of `relayEnv`; defaults are stated in JSDoc.
 */
export const relayEnv = z.object({
  /** Postgres connection string; the role needs REPLICATION and SELECT on the outbox. */
  DATABASE_URL: z.string().min(1),
  /** Comma-separated `host:port` list. */
  KAFKA_BROKERS: csv.pipe(z.array(z.string().min(1)).min(1)),
  /** Kafka client id. Default `walnut-relay`. */
  KAFKA_CLIENT_ID: z.string().default('walnut-relay'),
  /** Replication slot (created when missing). Default `walnut`. */
  RELAY_SLOT: identifier.default('walnut'),
  /** Publication (created when missing, inserts only). Default `walnut_outbox`. */
  RELAY_PUBLICATION: identifier.default('walnut_outbox'),
  /** Outbox table as `schema.table`. Default `public.outbox`. */
  RELAY_OUTBOX_TABLE: z
    .string()
    .regex(/^[A-Za-z_][A-Za-z0-9_$]*\.[A-Za-z_][A-Za-z0-9_$]*$/, 'must be schema.table')
    .default('public.outbox'),
  /** Column holding the event id. Default `id` (Debezium's convention). */
  RELAY_COLUMN_ID: identifier.default('id'),
  /** Column whose value becomes the Kafka message key. Default `aggregateid`. */
  RELAY_COLUMN_KEY: identifier.default('aggregateid'),
  /** Column forwarded byte for byte as the message value. Default `payload`. */
  RELAY_COLUMN_PAYLOAD: identifier.default('payload'),
  /** Topic with `{column}` placeholders. Default `outbox.event.{aggregatetype}`. */
  RELAY_TOPIC_TEMPLATE: z.string().min(1).default('outbox.event.{aggregatetype}'),
  /** Columns copied into Kafka headers. Default `type`. */
  RELAY_HEADER_COLUMNS: csv.pipe(z.array(identifier)).default(['type']),
  /** Records buffered or unacked before WAL reading pauses. Default 20000. */
  RELAY_MAX_INFLIGHT_RECORDS: int(1).default(20_000),
  /** Most records in one produce request. Default 2000. */
  RELAY_MAX_BATCH_RECORDS: int(1).default(2_000),
  /** Wait for more records before sending a small batch. Default 2 ms. */
  RELAY_LINGER_MS: int(0).default(2),
  /** How often the confirmed LSN is reported to Postgres. Default 1000 ms. */
  RELAY_STATUS_INTERVAL_MS: int(100).default(1_000),
  /** Longest wait for in-flight acks on SIGTERM. Default 10000 ms. */
  RELAY_SHUTDOWN_TIMEOUT_MS: int(0).default(10_000),
  /** Reconnect backoff cap. Default 10000 ms. */
  RELAY_BACKOFF_MAX_MS: int(100).default(10_000),
  /**
   * How long the relay keeps retrying while another connection holds its slot
   * before it exits non-zero. Default 30000 ms: long enough for Postgres to
   * notice that a SIGKILLed predecessor's walsender lost its client.
   */
  RELAY_SLOT_BUSY_TIMEOUT_MS: int(0).default(30_000),
  /** pino level. Default `info`. */
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace']).default('info'),
});

export type RelayEnv = z.infer<typeof relayEnv>;

export interface RelayConfig {
  databaseUrl: string;
  kafka: { brokers: string[]; clientId: string };
  slot: string;
  publication: string;
  outbox: OutboxMapping;
  maxInflightRecords: number;
  maxBatchRecords: number;
  lingerMs: number;
  statusIntervalMs: number;
  shutdownTimeoutMs: number;
  backoffMaxMs: number;
  slotBusyTimeoutMs: number;
}

export function relayConfig(env: RelayEnv): RelayConfig {
  const [schema, table] = env.RELAY_OUTBOX_TABLE.split('.') as [string, string];
  return {
    databaseUrl: env.DATABASE_URL,
    kafka: { brokers: env.KAFKA_BROKERS, clientId: env.KAFKA_CLIENT_ID },
    slot: env.RELAY_SLOT,
    publication: env.RELAY_PUBLICATION,
    outbox: {
      schema,
      table,
      columns: { id: env.RELAY_COLUMN_ID, key: env.RELAY_COLUMN_KEY, payload: env.RELAY_COLUMN_PAYLOAD },
      topicTemplate: env.RELAY_TOPIC_TEMPLATE,
      headerColumns: env.RELAY_HEADER_COLUMNS,
    },
    maxInflightRecords: env.RELAY_MAX_INFLIGHT_RECORDS,
    maxBatchRecords: env.RELAY_MAX_BATCH_RECORDS,
    lingerMs: env.RELAY_LINGER_MS,
    statusIntervalMs: env.RELAY_STATUS_INTERVAL_MS,
    shutdownTimeoutMs: env.RELAY_SHUTDOWN_TIMEOUT_MS,
    backoffMaxMs: env.RELAY_BACKOFF_MAX_MS,
    slotBusyTimeoutMs: env.RELAY_SLOT_BUSY_TIMEOUT_MS,
  };
}
