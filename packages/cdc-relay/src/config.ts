// Over 300 lines on purpose: this is the relay's one settings contract (every RELAY_*, Kafka,
// Redis and NATS variable with its zod rule and default), which docs/configuration.md mirrors; split, the
// contract would be read in several files and a sink's settings could drift from the rest.
import { csv, flag, int, logLevel } from '@walnut/runtime';
import { DEFAULT_SLOT, pgUrlSetting } from '@walnut/schema';
import * as z from 'zod';
import type { MessageMapping } from './message-mapping.ts';
import type { OutboxMapping } from './outbox-mapping.ts';

// A server as nats.js takes it: host:port, or a nats://, tls://, ws:// or wss:// URL.
const natsServer = /^((nats|tls|wss?):\/\/)?([^\s:/@]+(:[^\s:/@]*)?@)?[^\s/:,]+(:\d{1,5})?$/;
// Tokens of visible characters without '.', separated by '.'; '*' a whole token, '>' the last.
const natsSubject = /^([^\s.*>]+|\*)(\.([^\s.*>]+|\*))*(\.>)?$|^>$/;
const identifier = z.string().regex(/^[A-Za-z_][A-Za-z0-9_$]*$/, 'must be a plain SQL identifier');
// Debezium's outbox router renames with table.fields.additional.placement=column:header:alias;
// here the header is the alias, e.g. tracingspancontext:traceparent.
const headerColumn = z
  .string()
  .regex(/^[A-Za-z_][A-Za-z0-9_$]*(:[!#$%&'*+.^_`|~0-9A-Za-z-]+)?$/, 'must be column or column:header-name')
  .transform((entry) => {
    const [column, header] = entry.split(':') as [string, string?];
    return { column, header: header ?? column };
  });

/**
 * Every setting of the relay, keyed by its environment variable. The CLI
 * derives a flag from each non-secret key (RELAY_SLOT → --slot, KAFKA_BROKERS
 * → --kafka-brokers) and the help text from `.describe()`. Parsed once at start.
 */
export const relayEnv = z.object({
  DATABASE_URL: pgUrlSetting.describe(
    'Postgres URL (secret: env or DATABASE_URL_FILE only); add ?sslmode=require for TLS; several hosts: postgres://h1,h2:5433/db?target_session_attrs=read-write',
  ),
  RELAY_SINK: z
    .enum(['kafka', 'redis', 'nats'])
    .default('kafka')
    .describe(
      'where records go: kafka (KAFKA_BROKERS), redis (Redis Streams at REDIS_URL) or nats (NATS JetStream at NATS_SERVERS)',
    ),
  // Empty is allowed here (a shared env may set it blank beside RELAY_SINK=redis); sinkSettings
  // requires brokers with RELAY_SINK=kafka.
  KAFKA_BROKERS: csv
    .pipe(z.array(z.string().min(1)))
    .optional()
    .describe('comma-separated host:port list (required with RELAY_SINK=kafka)'),
  KAFKA_CLIENT_ID: z.string().default('walnut-relay').describe('Kafka client id'),
  KAFKA_SSL: flag.default(false).describe('connect to Kafka over TLS'),
  KAFKA_SSL_CA_FILE: z.string().optional().describe('PEM file of the CA that signed the brokers (TLS)'),
  KAFKA_SASL_MECHANISM: z
    .enum(['plain', 'scram-sha-256', 'scram-sha-512'])
    .optional()
    .describe('SASL mechanism; needs KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD'),
  KAFKA_SASL_USERNAME: z.string().optional().describe('SASL user'),
  KAFKA_SASL_PASSWORD: z.string().optional().describe('SASL password (secret: env or KAFKA_SASL_PASSWORD_FILE only)'),
  REDIS_URL: z
    .url({ protocol: /^rediss?$/, error: 'must be a redis:// or rediss:// URL' })
    .optional()
    .describe(
      'Redis URL with RELAY_SINK=redis, redis://[user:password@]host:port[/db] (rediss:// for TLS) (secret: env or REDIS_URL_FILE only)',
    ),
  // Stream ids are commit LSNs, not times, so trimming by MINID would mean a WAL position:
  // MAXLEN is the one that an operator can size.
  RELAY_REDIS_MAXLEN: int(1)
    .optional()
    .describe('RELAY_SINK=redis: trim each stream to about this many entries (XADD MAXLEN ~); unset: no trimming'),
  NATS_SERVERS: csv
    .pipe(
      z
        .array(z.string())
        .refine(
          (servers) => servers.every((server) => natsServer.test(server)),
          'must be host:port or nats://host:port, comma-separated',
        ),
    )
    .optional()
    .describe('RELAY_SINK=nats: comma-separated NATS servers, host:port or nats://host:port (tls:// for TLS)'),
  NATS_USER: z.string().min(1).optional().describe('RELAY_SINK=nats: user name; needs NATS_PASSWORD'),
  NATS_PASSWORD: z
    .string()
    .min(1)
    .optional()
    .describe('RELAY_SINK=nats: password of NATS_USER (secret: env or NATS_PASSWORD_FILE only)'),
  NATS_TOKEN: z
    .string()
    .min(1)
    .optional()
    .describe('RELAY_SINK=nats: authentication token (secret: env or NATS_TOKEN_FILE only)'),
  NATS_CREDS_FILE: z
    .string()
    .min(1)
    .optional()
    .describe('RELAY_SINK=nats: a .creds file (user JWT and NKey seed), as nsc writes it'),
  // JetStream's own rule for stream names: no whitespace, dots, wildcards or path separators.
  RELAY_NATS_STREAM: z
    .string()
    .regex(/^[^\s.*>/\\]+$/, 'must be a JetStream stream name: no spaces, ".", "*", ">", "/" or "\\"')
    .max(255)
    .default('WALNUT_OUTBOX')
    .describe('RELAY_SINK=nats: the JetStream stream the records go to, created when missing'),
  RELAY_NATS_SUBJECTS: csv
    .pipe(
      z
        .array(z.string())
        .min(1)
        .refine(
          (subjects) => subjects.every((subject) => natsSubject.test(subject)),
          'must be NATS subjects (tokens separated by ".", * and > wildcards)',
        ),
    )
    .optional()
    .describe(
      "RELAY_SINK=nats: the subjects a created stream captures; default: the topic templates' fixed prefixes + '>' (outbox.event.>) and the dead-letter topic",
    ),
  RELAY_NATS_DUPLICATE_WINDOW_MS: int(1_000)
    .default(120_000)
    .describe(
      "RELAY_SINK=nats: a created stream's duplicate window; a relay down longer than it may duplicate what it resends",
    ),
  RELAY_NATS_STORAGE: z
    .enum(['file', 'memory'])
    .default('file')
    .describe('RELAY_SINK=nats: storage of a created stream (memory loses every message when nats-server stops)'),
  RELAY_NATS_REPLICAS: int(1).max(5).default(1).describe('RELAY_SINK=nats: replicas of a created stream (1-5)'),
  RELAY_NATS_MAX_AGE_MS: int(0)
    .default(0)
    .describe("RELAY_SINK=nats: a created stream's max age (messages older are removed); 0: kept until removed"),
  RELAY_SLOT: identifier.default(DEFAULT_SLOT).describe('replication slot, created when missing'),
  RELAY_SLOT_FAILOVER: flag
    .default(true)
    .describe(
      'create the slot as a failover slot, synchronized to standbys (Postgres 17+; ignored before), and keep an existing one so',
    ),
  RELAY_PUBLICATION: identifier
    .default('walnut_outbox')
    .describe('publication, created for outbox inserts when missing'),
  RELAY_PUBLICATION_CHECK_MS: int(100)
    .default(60_000)
    .describe(
      'how often, while streaming, the relay checks that the publication still publishes the outbox inserts (also at every session start)',
    ),
  RELAY_OUTBOX_TABLE: z
    .string()
    .regex(/^[A-Za-z_][A-Za-z0-9_$]*\.[A-Za-z_][A-Za-z0-9_$]*$/, 'must be schema.table')
    .default('public.outbox')
    .describe('outbox table as schema.table'),
  RELAY_COLUMN_ID: identifier.default('id').describe('column sent as the `id` header'),
  RELAY_COLUMN_KEY: identifier.default('aggregateid').describe('column sent as the message key'),
  RELAY_COLUMN_PAYLOAD: identifier.default('payload').describe('column sent byte for byte as the value'),
  RELAY_COLUMN_CREATED_AT: identifier
    .default('created_at')
    .describe(
      'creation time column: replay --since/--until, and the order of replay and snapshot pages (skipped if absent)',
    ),
  RELAY_COLUMN_AGGREGATE_TYPE: identifier
    .default('aggregatetype')
    .describe('aggregate type column, for replay --aggregate-type'),
  RELAY_TOPIC_TEMPLATE: z
    .string()
    .min(1)
    .default('outbox.event.{aggregatetype}')
    .describe('topic, with {column} placeholders'),
  RELAY_HEADER_COLUMNS: csv
    .pipe(z.array(headerColumn))
    .default([
      { column: 'type', header: 'type' },
      { column: 'traceparent', header: 'traceparent' },
    ])
    .describe('columns copied into headers, as column or column:header (a missing column is skipped)'),
  RELAY_MESSAGE_PREFIXES: csv
    .pipe(z.array(z.string().min(1)))
    .default([])
    .describe('pg_logical_emit_message prefixes to relay (table-less outbox); empty: off'),
  RELAY_MESSAGE_TOPIC_TEMPLATE: z
    .string()
    .min(1)
    .default('outbox.message.{prefix}')
    .describe('topic of relayed messages, with a {prefix} placeholder'),
  RELAY_MAX_INFLIGHT_RECORDS: int(1).default(20_000).describe('records buffered or unacked before WAL reading pauses'),
  // 16 MiB: four times what five full requests (RELAY_MAX_REQUESTS_IN_FLIGHT x RELAY_MAX_BATCH_BYTES)
  // carry, so the reader never waits on it while Kafka keeps up. 64 MiB let 1 KB rows fill the
  // whole record window (20,000 records, about 25 MB with their objects), which was a quarter of
  // the relay's peak RSS in a drain and bought no throughput.
  RELAY_MAX_INFLIGHT_BYTES: int(1024 * 1024)
    .default(16 * 1024 * 1024)
    .describe('encoded bytes buffered or unacked before WAL reading pauses'),
  RELAY_MAX_BATCH_RECORDS: int(1).default(2_000).describe('most records in one produce request'),
  // The broker keeps the last five batches per producer and partition, so an idempotent
  // producer keeps order and dedupes retries with at most five requests in flight.
  RELAY_MAX_REQUESTS_IN_FLIGHT: int(1)
    .max(5)
    .default(5)
    .describe('produce requests in flight at once; beyond the first, only full ones'),
  RELAY_MAX_BATCH_BYTES: int(1024)
    .default(768 * 1024)
    .describe("most encoded bytes (headers included) per produce request; keep under the brokers' message.max.bytes"),
  RELAY_MAX_RECORD_BYTES: int(1024)
    .default(1_048_588)
    .describe("largest record the brokers accept: their message.max.bytes (Kafka's default 1048588)"),
  RELAY_DEAD_LETTER_TOPIC: z
    .string()
    .min(1)
    .optional()
    .describe(
      'topic for a stand-in of each record over RELAY_MAX_RECORD_BYTES or outbox row that maps to no legal topic; unset: a too-large record stops the relay, an unmappable row blocks it (OUTBOX_ROW_UNMAPPABLE)',
    ),
  RELAY_SNAPSHOT_PROGRESS_FILE: z
    .string()
    .min(1)
    .default('walnut-snapshot.json')
    .describe(
      "snapshot's progress file (its --progress-file default); run refuses to stream while it holds an unfinished snapshot of the slot",
    ),
  RELAY_TRANSACTIONAL_ID: z
    .string()
    .min(1)
    .optional()
    .describe(
      "Kafka transactional id; default walnut-relay.<database system id>.<database>.<slot>: one per slot (one whose checkpoints are another slot's stops the relay with CONFIG_INVALID)",
    ),
  RELAY_DELIVERY: z
    .enum(['at-least-once', 'exactly-once'])
    .default('at-least-once')
    .describe(
      'at-least-once (pipelined sends; a crash may duplicate) or exactly-once (each batch one Kafka transaction with its checkpoint; consumers must read_committed)',
    ),
  RELAY_CHECKPOINT_TOPIC: z
    .string()
    .min(1)
    .default('walnut.relay.checkpoints')
    .describe("compacted topic of the relay's checkpoints (created when missing)"),
  RELAY_CHECKPOINT_INTERVAL_MS: int(0)
    .default(1_000)
    .describe('least time between two checkpoints (the last one goes at once on shutdown)'),
  RELAY_KAFKA_SEND_TIMEOUT_MS: int(1_000)
    .default(30_000)
    .describe('longest a Kafka transaction may take to commit before the session restarts with a new producer'),
  // 0 still batches: records decoded in one read of the WAL stream go together,
  // and records arriving while a request is in flight wait for it anyway. A
  // linger trades end-to-end latency for less CPU per record on drains (bench/).
  RELAY_LINGER_MS: int(0).default(0).describe('wait for more records before sending a small batch'),
  // Postgres's own wal_receiver_status_interval default: acks are reported as they come
  // anyway, and the server asks for a reply before wal_sender_timeout when it needs one.
  RELAY_STATUS_INTERVAL_MS: int(100)
    .default(10_000)
    .describe('how often the confirmed LSN is reported when nothing else reports it'),
  RELAY_SHUTDOWN_TIMEOUT_MS: int(0).default(10_000).describe('SIGTERM: longest wait for in-flight acks'),
  RELAY_BACKOFF_MAX_MS: int(100)
    .default(10_000)
    .describe(
      'cap of the reconnect backoff (each wait is half to all of its ceiling); a session that streamed under 30 s (or this) counts as failed, so a lasting fault costs at most one session per half of it',
    ),
  // Unset, it outlasts the server's wal_sender_timeout: that is how long Postgres may take to
  // notice that a predecessor on a dead host is gone and free its slot.
  RELAY_STANDBY: flag
    .default(true)
    .describe('while another relay streams from the slot, wait as its standby and take over when it is gone'),
  RELAY_STANDBY_POLL_MS: int(50).default(500).describe('how often a standby tries to take the slot'),
  RELAY_SLOT_BUSY_TIMEOUT_MS: int(0)
    .optional()
    .describe(
      "with RELAY_STANDBY=false: how long to retry while another process holds the slot, then exit 1; default: the server's wal_sender_timeout + 10 s",
    ),
  RELAY_HTTP_PORT: int(0).default(9400).describe('port of /health, /ready and /metrics; 0 picks a free one'),
  RELAY_HTTP_HOST: z.string().default('127.0.0.1').describe('address of the HTTP server'),
  LOG_LEVEL: logLevel.describe('pino log level'),
});

export type RelayEnv = z.infer<typeof relayEnv>;

/** Settings that never come from flags (visible in `ps`) and may come from `<NAME>_FILE`. */
export const secretSettings = [
  'DATABASE_URL',
  'KAFKA_SASL_PASSWORD',
  'REDIS_URL',
  'NATS_PASSWORD',
  'NATS_TOKEN',
] as const;

export interface KafkaSecurity {
  ssl: boolean | { ca: string[] };
  sasl?: { mechanism: 'PLAIN' | 'SCRAM-SHA-256' | 'SCRAM-SHA-512'; username: string; password: string };
}

export type KafkaConnection = { brokers: string[]; clientId: string } & KafkaSecurity;

/**
 * Where the records go. Kafka is the full-featured sink (fencing, exactly-once,
 * checkpoints); Redis Streams take the live stream at least once, with entry
 * ids that make a resend a no-op (publish/redis-sink.ts).
 */
export type SinkSettings =
  | { kind: 'kafka' }
  | {
      kind: 'redis';
      url: string;
      /** XADD MAXLEN ~ this; undefined: streams are not trimmed. */
      maxLen: number | undefined;
    }
  | ({ kind: 'nats' } & NatsSettings);

/** RELAY_SINK=nats: where, as whom, and the stream the relay creates when it is missing. */
export interface NatsSettings {
  servers: string[];
  auth: NatsAuth;
  stream: NatsStreamSettings;
}

export type NatsAuth =
  | { kind: 'none' }
  | { kind: 'user'; user: string; password: string }
  | { kind: 'token'; token: string }
  /** The contents of NATS_CREDS_FILE. */
  | { kind: 'creds'; creds: string };

export interface NatsStreamSettings {
  name: string;
  /** Unset: derived from the topic templates and the dead-letter topic (nats-subjects.ts). */
  subjects: string[] | undefined;
  duplicateWindowMs: number;
  storage: 'file' | 'memory';
  replicas: number;
  /** 0: no age limit. */
  maxAgeMs: number;
}

export interface RelayConfig {
  databaseUrl: string;
  sink: SinkSettings;
  /** With RELAY_SINK=redis, no brokers (nothing connects to Kafka). */
  kafka: KafkaConnection;
  slot: string;
  /** Ask for a failover slot (Postgres 17+), so a promoted standby has it. Default true. */
  slotFailover: boolean;
  publication: string;
  /** How often the publication is checked while streaming (publication-check.ts). */
  publicationCheckMs: number;
  outbox: OutboxMapping;
  /** Columns only replay and snapshot read: they select and order rows with ordinary queries. */
  replayColumns: { createdAt: string; aggregateType: string };
  messages: MessageMapping;
  maxInflightRecords: number;
  maxInflightBytes: number;
  maxBatchRecords: number;
  maxBatchBytes: number;
  maxRequestsInFlight: number;
  checkpointIntervalMs: number;
  maxRecordBytes: number;
  deadLetterTopic: string | undefined;
  /** Where `snapshot` saves its progress; `run` refuses while it holds an unfinished snapshot of the slot. */
  snapshotProgressFile: string;
  /** Unset: derived from the database and slot when the relay starts (see transactionalIdFor). */
  transactionalId: string | undefined;
  checkpointTopic: string;
  kafkaSendTimeoutMs: number;
  lingerMs: number;
  statusIntervalMs: number;
  /** exactly-once: each batch is a Kafka transaction with its checkpoint, and a restart skips what Kafka holds. */
  delivery: 'at-least-once' | 'exactly-once';
  shutdownTimeoutMs: number;
  backoffMaxMs: number;
  /** Wait as a standby while another relay holds the slot (else give up after slotBusyTimeoutMs). */
  standby: boolean;
  standbyPollMs: number;
  /** Unset: the server's wal_sender_timeout + 10 s. */
  slotBusyTimeoutMs: number | undefined;
  http: { port: number; host: string };
}

export function relayConfig(env: RelayEnv, readFile: (path: string) => string): RelayConfig {
  const [schema, table] = env.RELAY_OUTBOX_TABLE.split('.') as [string, string];
  return {
    databaseUrl: env.DATABASE_URL,
    sink: sinkSettings(env, readFile),
    kafka: { brokers: env.KAFKA_BROKERS ?? [], clientId: env.KAFKA_CLIENT_ID, ...kafkaSecurity(env, readFile) },
    slot: env.RELAY_SLOT,
    slotFailover: env.RELAY_SLOT_FAILOVER,
    publication: env.RELAY_PUBLICATION,
    publicationCheckMs: env.RELAY_PUBLICATION_CHECK_MS,
    outbox: {
      schema,
      table,
      columns: { id: env.RELAY_COLUMN_ID, key: env.RELAY_COLUMN_KEY, payload: env.RELAY_COLUMN_PAYLOAD },
      topicTemplate: env.RELAY_TOPIC_TEMPLATE,
      headerColumns: env.RELAY_HEADER_COLUMNS,
    },
    replayColumns: { createdAt: env.RELAY_COLUMN_CREATED_AT, aggregateType: env.RELAY_COLUMN_AGGREGATE_TYPE },
    messages: { prefixes: env.RELAY_MESSAGE_PREFIXES, topicTemplate: env.RELAY_MESSAGE_TOPIC_TEMPLATE },
    maxInflightRecords: env.RELAY_MAX_INFLIGHT_RECORDS,
    maxInflightBytes: env.RELAY_MAX_INFLIGHT_BYTES,
    maxBatchRecords: env.RELAY_MAX_BATCH_RECORDS,
    maxBatchBytes: env.RELAY_MAX_BATCH_BYTES,
    maxRequestsInFlight: env.RELAY_MAX_REQUESTS_IN_FLIGHT,
    checkpointIntervalMs: env.RELAY_CHECKPOINT_INTERVAL_MS,
    maxRecordBytes: env.RELAY_MAX_RECORD_BYTES,
    deadLetterTopic: env.RELAY_DEAD_LETTER_TOPIC,
    snapshotProgressFile: env.RELAY_SNAPSHOT_PROGRESS_FILE,
    transactionalId: env.RELAY_TRANSACTIONAL_ID,
    checkpointTopic: env.RELAY_CHECKPOINT_TOPIC,
    kafkaSendTimeoutMs: env.RELAY_KAFKA_SEND_TIMEOUT_MS,
    lingerMs: env.RELAY_LINGER_MS,
    statusIntervalMs: env.RELAY_STATUS_INTERVAL_MS,
    delivery: env.RELAY_DELIVERY,
    shutdownTimeoutMs: env.RELAY_SHUTDOWN_TIMEOUT_MS,
    backoffMaxMs: env.RELAY_BACKOFF_MAX_MS,
    standby: env.RELAY_STANDBY,
    standbyPollMs: env.RELAY_STANDBY_POLL_MS,
    slotBusyTimeoutMs: env.RELAY_SLOT_BUSY_TIMEOUT_MS,
    http: { port: env.RELAY_HTTP_PORT, host: env.RELAY_HTTP_HOST },
  };
}

function kafkaSecurity(env: RelayEnv, readFile: (path: string) => string): KafkaSecurity {
  const ssl = env.KAFKA_SSL_CA_FILE ? { ca: [readFile(env.KAFKA_SSL_CA_FILE)] } : env.KAFKA_SSL;
  if (!env.KAFKA_SASL_MECHANISM) return { ssl };
  if (!env.KAFKA_SASL_USERNAME || !env.KAFKA_SASL_PASSWORD) {
    throw new Error('KAFKA_SASL_MECHANISM needs KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD');
  }
  const credentials = { username: env.KAFKA_SASL_USERNAME, password: env.KAFKA_SASL_PASSWORD };
  const mechanism = ({ plain: 'PLAIN', 'scram-sha-256': 'SCRAM-SHA-256', 'scram-sha-512': 'SCRAM-SHA-512' } as const)[
    env.KAFKA_SASL_MECHANISM
  ];
  return { ssl, sasl: { mechanism, ...credentials } };
}

/**
 * The settings one sink needs and the other does not make required, so they
 * are checked here, each refusal one line naming the setting (exit 2).
 */
function sinkSettings(env: RelayEnv, readFile: (path: string) => string): SinkSettings {
  if (env.RELAY_SINK === 'kafka') {
    if (!env.KAFKA_BROKERS?.length) throw new Error('--kafka-brokers / KAFKA_BROKERS: required with RELAY_SINK=kafka');
    return { kind: 'kafka' };
  }
  if (env.RELAY_SINK === 'nats') return { kind: 'nats', ...natsSettings(env, readFile) };
  if (!env.REDIS_URL) throw new Error('REDIS_URL (or REDIS_URL_FILE): required with RELAY_SINK=redis');
  // Kafka's exactly-once is its transactions plus a checkpoint in them. Redis has neither to offer,
  // and needs neither: a resent entry carries the id it had, which the stream refuses.
  if (env.RELAY_DELIVERY === 'exactly-once') {
    throw new Error(
      '--delivery / RELAY_DELIVERY: exactly-once is for RELAY_SINK=kafka; with redis leave it at-least-once, whose stream entry ids (commit LSN-position) already make a resend a no-op (docs/relay.md, Redis Streams)',
    );
  }
  return { kind: 'redis', url: env.REDIS_URL, maxLen: env.RELAY_REDIS_MAXLEN };
}

function natsSettings(env: RelayEnv, readFile: (path: string) => string): NatsSettings {
  if (!env.NATS_SERVERS?.length) throw new Error('--nats-servers / NATS_SERVERS: required with RELAY_SINK=nats');
  // Exactly-once is Kafka's transactions with a checkpoint in them. JetStream drops a resend by
  // its Nats-Msg-Id within the stream's duplicate window instead (docs/relay.md, NATS JetStream).
  if (env.RELAY_DELIVERY === 'exactly-once') {
    throw new Error(
      '--delivery / RELAY_DELIVERY: exactly-once is for RELAY_SINK=kafka; with nats leave it at-least-once, whose message ids (commit LSN-position) make JetStream drop a resend within the duplicate window (docs/relay.md, NATS JetStream)',
    );
  }
  return {
    servers: env.NATS_SERVERS,
    auth: natsAuth(env, readFile),
    stream: {
      name: env.RELAY_NATS_STREAM,
      subjects: env.RELAY_NATS_SUBJECTS,
      duplicateWindowMs: env.RELAY_NATS_DUPLICATE_WINDOW_MS,
      storage: env.RELAY_NATS_STORAGE,
      replicas: env.RELAY_NATS_REPLICAS,
      maxAgeMs: env.RELAY_NATS_MAX_AGE_MS,
    },
  };
}

/** One way to authenticate: two would leave which one the server saw to chance. */
function natsAuth(env: RelayEnv, readFile: (path: string) => string): NatsAuth {
  const given = [
    env.NATS_USER || env.NATS_PASSWORD ? 'NATS_USER/NATS_PASSWORD' : undefined,
    env.NATS_TOKEN ? 'NATS_TOKEN' : undefined,
    env.NATS_CREDS_FILE ? 'NATS_CREDS_FILE' : undefined,
  ].filter((name) => name !== undefined);
  if (given.length > 1) throw new Error(`NATS credentials: set one of ${given.join(', ')}, not several`);
  if (env.NATS_TOKEN) return { kind: 'token', token: env.NATS_TOKEN };
  if (env.NATS_CREDS_FILE) {
    let creds: string;
    try {
      creds = readFile(env.NATS_CREDS_FILE);
    } catch (error) {
      throw new Error(
        `--nats-creds-file / NATS_CREDS_FILE: cannot read ${env.NATS_CREDS_FILE}: ${(error as Error).message}`,
      );
    }
    if (!/-----BEGIN NATS USER JWT-----/.test(creds) || !/-----BEGIN USER NKEY SEED-----/.test(creds)) {
      throw new Error(
        `--nats-creds-file / NATS_CREDS_FILE: ${env.NATS_CREDS_FILE} is not a NATS .creds file (no user JWT and NKey seed blocks)`,
      );
    }
    return { kind: 'creds', creds };
  }
  if (env.NATS_USER || env.NATS_PASSWORD) {
    if (!env.NATS_USER || !env.NATS_PASSWORD) throw new Error('NATS_USER and NATS_PASSWORD: set both, or neither');
    return { kind: 'user', user: env.NATS_USER, password: env.NATS_PASSWORD };
  }
  return { kind: 'none' };
}
