import { randomUUID } from 'node:crypto';
import { KV_AGGREGATE_TYPE, runMigrations } from '@walnut/schema';
import { Kafka, logLevel } from 'kafkajs';
import pg from 'pg';
import { createDatabase } from './database.ts';
import { freePort } from './ports.ts';
import { waitFor } from './wait-for.ts';
import { startWalnutProcess, type WalnutProcess } from './walnut-processes.ts';

/**
 * One isolated Walnut per test file on the shared stack: its own database,
 * slot, topics and consumer group, so files never see each other's events.
 * The stack itself comes from the environment `walnut-stack run` exports.
 */
export interface WalnutFixture {
  databaseUrl: string;
  brokers: string[];
  slot: string;
  topic: string;
  env: Record<string, string>;
  /**
   * What the relay runs with (startRelay, startStandbyRelay; a test starting
   * a relay CLI itself uses it too): `env`, or in least-privilege mode `env`
   * with DATABASE_URL naming the relay's own role.
   */
  relayEnv: Record<string, string>;
  relayRole: RelayRole;
  pool: pg.Pool;
  startApi(): Promise<{ url: string; process: WalnutProcess }>;
  startRelay(extraEnv?: Record<string, string>): Promise<WalnutProcess>;
  /** A relay beside one that streams: resolves once it says it is the standby. */
  startStandbyRelay(extraEnv?: Record<string, string>): Promise<WalnutProcess>;
  startApplier(): Promise<WalnutProcess>;
  kafka: Kafka;
  /** Stops every process this fixture started and drops its slot. */
  close(): Promise<void>;
}

/**
 * Who the relay connects as. `owner`: the migration user, like the API and the
 * applier. `least-privilege`: a role `<id>_relay` with LOGIN REPLICATION and
 * SELECT on the outbox only, the publication made beforehand by the table's
 * owner, as a managed service would have it (docs/relay.md, Least privilege).
 */
export type RelayRole = 'owner' | 'least-privilege';

/** WALNUT_RELAY_ROLE, `owner` by default: the compatibility matrix sets least-privilege. */
export function relayRoleFromEnv(env: NodeJS.ProcessEnv = process.env): RelayRole {
  const value = env.WALNUT_RELAY_ROLE || 'owner';
  if (value === 'owner' || value === 'least-privilege') return value;
  throw new Error(`WALNUT_RELAY_ROLE must be owner or least-privilege, got "${value}"`);
}

export async function walnutFixture(
  name: string,
  services: { databaseUrl?: string; brokers?: string[]; env?: Record<string, string>; relayRole?: RelayRole } = {},
): Promise<WalnutFixture> {
  const baseUrl = services.databaseUrl ?? requireEnv('DATABASE_URL');
  const brokers = services.brokers ?? requireEnv('KAFKA_BROKERS').split(',');
  const id = `${name}_${randomUUID().slice(0, 8)}`.replace(/[^a-z0-9_]/gi, '_').toLowerCase();
  const databaseUrl = await createDatabase(baseUrl, `walnut_${id}`);
  await runMigrations(databaseUrl);
  const slot = `walnut_${id}`;
  const topicPrefix = `test.${id}`;
  const topic = `${topicPrefix}.${KV_AGGREGATE_TYPE}`;
  const env: Record<string, string> = {
    DATABASE_URL: databaseUrl,
    KAFKA_BROKERS: brokers.join(','),
    RELAY_SLOT: slot,
    RELAY_PUBLICATION: `walnut_outbox_${id}`,
    RELAY_TOPIC_TEMPLATE: `${topicPrefix}.{aggregatetype}`,
    KV_TOPIC: topic,
    APPLIER_GROUP_ID: `applier_${id}`,
    // Several relays may run at once in a test: each takes a free port for /metrics.
    RELAY_HTTP_PORT: '0',
    APPLIER_HTTP_PORT: '0',
    LOG_LEVEL: 'info',
    ...services.env,
  };
  const pool = new pg.Pool({ connectionString: databaseUrl, max: 4 });
  pool.on('error', () => {});
  const relayRole = services.relayRole ?? relayRoleFromEnv();
  const role = relayRole === 'least-privilege' ? await createRelayRole(pool, `${id}_relay`, env) : undefined;
  const relayEnv = role ? { ...env, DATABASE_URL: role.url } : env;
  const kafka = new Kafka({ clientId: `test_${id}`, brokers, logLevel: logLevel.NOTHING });
  const started: WalnutProcess[] = [];
  const track = (p: WalnutProcess) => {
    started.push(p);
    return p;
  };

  return {
    databaseUrl,
    brokers,
    slot,
    topic,
    env,
    relayEnv,
    relayRole,
    pool,
    kafka,
    async startApi() {
      const port = await freePort();
      const process = track(startWalnutProcess('api', { ...env, API_PORT: String(port) }));
      await process.waitForLine(/api listening/);
      return { url: `http://127.0.0.1:${port}`, process };
    },
    async startRelay(extraEnv = {}) {
      const process = track(startWalnutProcess('relay', { ...relayEnv, ...extraEnv }));
      await process.waitForLine(/"state":"streaming"/);
      return process;
    },
    async startStandbyRelay(extraEnv = {}) {
      const process = track(startWalnutProcess('relay', { ...relayEnv, ...extraEnv }));
      await process.waitForLine(/"state":"standby"/);
      return process;
    },
    async startApplier() {
      const process = track(startWalnutProcess('applier', env));
      await process.waitForLine(/applier consuming/);
      return process;
    },
    async close() {
      await Promise.all(started.map((p) => p.stop('SIGKILL')));
      await waitFor(
        'slot released',
        async () => {
          const r = await pool.query('SELECT active FROM pg_replication_slots WHERE slot_name = $1', [slot]);
          return r.rows[0]?.active !== true;
        },
        { timeoutMs: 15_000 },
      );
      await pool.query('SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1', [
        slot,
      ]);
      if (role) {
        // Roles are per cluster, not per database: leave none behind on a shared server.
        await pool.query(`DROP OWNED BY ${role.name}; DROP ROLE ${role.name}`).catch(() => {});
      }
      await pool.end();
    },
  };
}

/**
 * The least-privilege relay role: LOGIN REPLICATION, SELECT on the outbox, and
 * the outbox's publication created here by its owner, so the relay never has
 * to. A password, so the URL works where pg_hba asks for one.
 */
async function createRelayRole(
  pool: pg.Pool,
  name: string,
  env: Record<string, string>,
): Promise<{ name: string; url: string }> {
  const password = randomUUID();
  const role = pg.escapeIdentifier(name);
  const [schema, table] = (env.RELAY_OUTBOX_TABLE ?? 'public.outbox').split('.') as [string, string];
  const outbox = `${pg.escapeIdentifier(schema)}.${pg.escapeIdentifier(table)}`;
  await pool.query(`
    CREATE PUBLICATION ${pg.escapeIdentifier(env.RELAY_PUBLICATION as string)} FOR TABLE ${outbox} WITH (publish = 'insert');
    CREATE ROLE ${role} LOGIN REPLICATION PASSWORD ${pg.escapeLiteral(password)};
    GRANT USAGE ON SCHEMA ${pg.escapeIdentifier(schema)} TO ${role};
    GRANT SELECT ON ${outbox} TO ${role};
  `);
  const url = new URL(env.DATABASE_URL as string);
  url.username = name;
  url.password = password;
  return { name: role, url: url.toString() };
}

export interface TopicRecord {
  partition: number;
  offset: string;
  key: string | null;
  value: string | null;
  headers: Record<string, string>;
  /** The record's Kafka timestamp (the producer's create time), ms since the epoch. */
  timestamp: number;
}

/**
 * Reads a topic from the beginning with a fresh consumer group, independent of
 * the applier and of the relay's own Kafka client, until `enough(records)`
 * holds or the deadline passes. The consumer reads committed records only
 * (kafkajs's default isolation): the relay produces in Kafka transactions.
 */
export async function readTopic(
  kafka: Kafka,
  topic: string,
  enough: (records: readonly TopicRecord[], positions: ReadonlyMap<number, bigint>) => boolean,
  timeoutMs = 60_000,
): Promise<TopicRecord[]> {
  const records: TopicRecord[] = [];
  /** Per partition, the last offset consumed, transaction markers included. */
  const positions = new Map<number, bigint>();
  // Subscribing to a topic the relay has not created yet fails rather than waits.
  const admin = kafka.admin();
  await admin.connect();
  try {
    await waitFor(`topic ${topic} to exist`, async () => (await admin.listTopics()).includes(topic), { timeoutMs });
  } finally {
    await admin.disconnect();
  }
  const consumer = kafka.consumer({ groupId: `reader_${randomUUID()}`, readUncommitted: false });
  await consumer.connect();
  try {
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    let done!: () => void;
    const finished = new Promise<void>((resolve) => {
      done = resolve;
    });
    const check = () => {
      if (enough(records, positions)) done();
    };
    // A batch of only markers (or aborted records) reaches no handler but this event.
    consumer.on(consumer.events.END_BATCH_PROCESS, ({ payload }) => {
      const at = BigInt(payload.lastOffset);
      if (at > (positions.get(payload.partition) ?? -1n)) positions.set(payload.partition, at);
      check();
    });
    await consumer.run({
      eachBatch: async ({ batch }) => {
        for (const m of batch.messages) {
          const headers: Record<string, string> = {};
          for (const [k, v] of Object.entries(m.headers ?? {})) {
            if (v !== undefined) headers[k] = (Array.isArray(v) ? v[0] : v)?.toString() ?? '';
          }
          records.push({
            partition: batch.partition,
            offset: m.offset,
            key: m.key?.toString() ?? null,
            value: m.value?.toString() ?? null,
            headers,
            timestamp: Number(m.timestamp),
          });
        }
      },
    });
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, timeoutMs);
    });
    await Promise.race([finished, timedOut]);
    clearTimeout(timer);
    return records;
  } finally {
    await consumer.disconnect();
  }
}

/**
 * Every committed record of a topic that is no longer written: reads until
 * each partition is consumed up to its high watermark as of the call
 * (markers included), so the count is exact where offsets are not (commit
 * markers take offsets; aborted records are in the log, not in the topic).
 */
export async function readWholeTopic(kafka: Kafka, topic: string, timeoutMs = 120_000): Promise<TopicRecord[]> {
  const admin = kafka.admin();
  await admin.connect();
  let ends: Map<number, bigint>;
  try {
    ends = new Map((await admin.fetchTopicOffsets(topic)).map((o) => [o.partition, BigInt(o.high)]));
  } finally {
    await admin.disconnect();
  }
  let reached = false;
  const records = await readTopic(
    kafka,
    topic,
    (_, positions) => {
      reached = [...ends].every(([partition, end]) => end === 0n || (positions.get(partition) ?? -1n) >= end - 1n);
      return reached;
    },
    timeoutMs,
  );
  if (!reached) throw new Error(`${topic} was not read to its end within ${timeoutMs} ms (${records.length} records)`);
  return records;
}

function requireEnv(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run tests through \`walnut-stack run\` (pnpm test)`);
  return value;
}
