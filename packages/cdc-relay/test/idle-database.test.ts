/**
 * An idle outbox on a busy database does not pin WAL: while another table takes
 * a minute of continuous writes and the outbox gets none, the slot's
 * confirmed_flush_lsn keeps advancing and ends close to the WAL insert position.
 * Then an outbox row written after all that still reaches Kafka, so confirming
 * past the busy table's WAL skipped nothing.
 *
 * Why it holds without a heartbeat write: whenever the walsender has caught up
 * and the client's reported flush position is behind what it has decoded, it
 * sends a keepalive carrying that position before it sleeps (WalSndWaitForWal
 * in src/backend/replication/walsender.c), and the relay confirms a keepalive's
 * position when no transaction is open or unacked (AckTracker.keepalive).
 */
import { randomUUID } from 'node:crypto';
import { parseLsn } from '@walnut/schema';
import { pause, readTopic, type WalnutFixture, waitFor, walnutSuite } from '@walnut/stack';
import pg from 'pg';
import * as assert from 'uvu/assert';

const WRITE_MS = 60_000;
const STATUS_INTERVAL_MS = 1_000;
const SAMPLE_MS = 2_000;
/** How far behind the WAL insert position the slot may end: well under one segment. */
const MAX_FINAL_LAG_BYTES = 1024 * 1024;

const idle = walnutSuite('idle database', 'idle', { env: { RELAY_STATUS_INTERVAL_MS: String(STATUS_INTERVAL_MS) } });

interface Sample {
  atMs: number;
  confirmed: string;
  restart: string;
  current: string;
  lagBytes: number;
}

async function sample(walnut: WalnutFixture, startedAt: number): Promise<Sample> {
  const r = await walnut.pool.query<{ confirmed: string; restart: string; current: string; lag: string }>(
    `SELECT confirmed_flush_lsn::text AS confirmed, restart_lsn::text AS restart,
            pg_current_wal_lsn()::text AS current,
            pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::text AS lag
       FROM pg_replication_slots WHERE slot_name = $1`,
    [walnut.slot],
  );
  const row = r.rows[0];
  if (!row) throw new Error(`slot ${walnut.slot} is gone`);
  return {
    atMs: Date.now() - startedAt,
    confirmed: row.confirmed,
    restart: row.restart,
    current: row.current,
    lagBytes: Number(row.lag),
  };
}

const kib = (bytes: number) => `${(bytes / 1024).toFixed(0)} KiB`;

idle('a busy non-outbox table does not hold the slot back', async ({ walnut }) => {
  const relay = await walnut.startRelay();
  await walnut.pool.query('CREATE TABLE busy (id bigserial PRIMARY KEY, n int NOT NULL, pad text NOT NULL)');

  // One connection writing as fast as it can: small autocommit transactions,
  // inserts and updates, none of them on the outbox.
  const writer = new pg.Client({ connectionString: walnut.databaseUrl });
  await writer.connect();
  const startedAt = Date.now();
  let transactions = 0;
  let writerDone = false;
  const writing = (async () => {
    const pad = 'x'.repeat(200);
    while (Date.now() - startedAt < WRITE_MS) {
      await writer.query('INSERT INTO busy (n, pad) VALUES ($1, $2)', [transactions, pad]);
      await writer.query('UPDATE busy SET n = n + 1 WHERE id = (SELECT max(id) FROM busy)');
      transactions += 2;
    }
  })().finally(() => {
    writerDone = true;
  });

  // Sampling, not synchronization: the slot's position every SAMPLE_MS while the writer runs.
  const samples: Sample[] = [await sample(walnut, startedAt)];
  while (!writerDone) {
    await Promise.race([writing, pause(SAMPLE_MS)]);
    samples.push(await sample(walnut, startedAt));
  }
  await writing;
  await writer.end();

  for (const s of samples) {
    console.log(
      `  idle: t=${(s.atMs / 1000).toFixed(1)}s confirmed=${s.confirmed} restart=${s.restart} current=${s.current} lag=${kib(s.lagBytes)}`,
    );
  }
  const advances = samples.filter((s, i) => i > 0 && s.confirmed !== samples[i - 1]?.confirmed).length;
  const maxLag = Math.max(...samples.map((s) => s.lagBytes));
  const first = samples[0] as Sample;
  const last = samples.at(-1) as Sample;
  const walBytes = Number(parseLsn(last.current) - parseLsn(first.current));
  console.log(
    `  idle: ${transactions} transactions, ${kib(walBytes)} of WAL in ${WRITE_MS / 1000}s; confirmed advanced in ${advances} of ${samples.length - 1} samples; max lag ${kib(maxLag)}`,
  );
  assert.ok(transactions > 1_000, `the writer kept the database busy (${transactions} transactions)`);
  assert.ok(advances >= 10, `confirmed_flush_lsn advanced in only ${advances} of ${samples.length - 1} samples`);
  // restart_lsn is what actually holds WAL; it follows confirmed_flush_lsn past each running-xacts snapshot.
  assert.ok(parseLsn(last.restart) > parseLsn(first.restart), 'restart_lsn advanced, so old WAL can be recycled');

  const final = await waitFor(
    `confirmed_flush_lsn within ${kib(MAX_FINAL_LAG_BYTES)} of pg_current_wal_lsn()`,
    async () => {
      const s = await sample(walnut, startedAt);
      return s.lagBytes < MAX_FINAL_LAG_BYTES && s;
    },
    { timeoutMs: 10 * STATUS_INTERVAL_MS, intervalMs: 200 },
  );
  console.log(
    `  idle: ${((final.atMs - WRITE_MS) / 1000).toFixed(1)}s after the writer stopped: confirmed=${final.confirmed} current=${final.current} lag=${kib(final.lagBytes)}`,
  );

  // Confirming past the busy table's WAL must not have skipped the outbox.
  const id = randomUUID();
  await walnut.pool.query(
    `INSERT INTO outbox (id, aggregatetype, aggregateid, type, payload) VALUES ($1, 'kv', 'after-idle', 'kv.set', '{}')`,
    [id],
  );
  const records = await readTopic(walnut.kafka, walnut.topic, (seen) => seen.some((r) => r.headers.id === id), 30_000);
  assert.ok(
    records.some((r) => r.headers.id === id),
    'the outbox row written after the idle minute reached Kafka',
  );
  assert.ok(relay.running, 'the relay kept running');
  await relay.stop('SIGTERM');
});

idle.run();
