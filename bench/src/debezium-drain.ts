/**
 * Debezium's drain of the rows a relay drain has just relayed: its own slot,
 * created with the relay's before the rows were written, so it sees the same
 * commits. Timed from the connector's streaming start until the output topic's
 * end offsets add up to every row (Connect's producer is not transactional, so
 * offsets count records). Then: how long until the slot is confirmed up to the
 * WAL end of the writes, which Debezium does only after an offset flush.
 */
import { mkdtemp } from 'node:fs/promises';
import path from 'node:path';
import type { WalnutFixture } from '@walnut/stack';
import { OFFSET_FLUSH_INTERVAL_MS, startDebeziumConnect } from './debezium-connect.ts';
import { createTopic, topicRecords } from './kafka-topics.ts';
import { cpuSeconds, rssBytes } from './proc-stats.ts';

export interface DebeziumDrain {
  rowsPerTx: number;
  rows: number;
  seconds: number;
  /** Spawn to Debezium's "Starting streaming": JVM, Connect worker and connector start-up. */
  startSeconds: number;
  cpuSeconds: number | null;
  peakRssBytes: number | null;
  confirm: SettledConfirm;
}

/**
 * Where the slot's confirmed_flush_lsn settled after the drain, and when. Debezium confirms only
 * LSNs of events it was sent, after an offset flush: with nothing after the rows in its publication
 * (the fill's flushing commit is outside it; pgoutput skips it) the slot stays short of the end
 * LSN, until a later write to a published table (Debezium's remedy is heartbeat.action.query).
 */
export interface SettledConfirm {
  /** From the last record in Kafka until its last advance (or reaching the end LSN). */
  seconds: number;
  confirmedLsn: string;
  /** The end LSN minus the settled confirmed LSN; 0 when it reached the end. */
  shortOfEndBytes: number;
  /** How long it was watched without a further advance. */
  quietSeconds: number;
}
export type DebeziumOutcome = DebeziumDrain | { rowsPerTx: number; failed: string };

/** Debezium's log line when its streaming source starts reading the slot. */
const STREAMING = /Starting streaming/;

export async function drainDebezium(
  walnut: WalnutFixture,
  opts: {
    dir: string;
    brokers: string[];
    slot: string;
    publication: string;
    endLsn: string;
    rows: number;
    rowsPerTx: number;
    deadlineMs: number;
    log: (line: string) => void;
  },
): Promise<DebeziumDrain> {
  const { rows, log } = opts;
  const topicPrefix = `bench.debezium-${opts.slot}`;
  const topic = `${topicPrefix}.kv`;
  await createTopic(walnut.kafka, topic);
  const spawned = performance.now();
  const connect = await startDebeziumConnect({
    dir: await mkdtemp(path.join(opts.dir, 'debezium-')),
    databaseUrl: walnut.databaseUrl,
    brokers: opts.brokers,
    slot: opts.slot,
    publication: opts.publication,
    topicPrefix,
    log,
  });
  const admin = walnut.kafka.admin();
  await admin.connect();
  try {
    await connect.waitForLine(STREAMING, 120_000).catch((error: Error) => {
      throw new Error(`${error.message}; ${firstProblem(connect.output)}`);
    });
    const started = performance.now();
    const cpuAtStart = cpuSeconds(connect.pid);
    let peakRssBytes: number | null = null;
    for (;;) {
      const rss = rssBytes(connect.pid);
      if (rss !== null) peakRssBytes = Math.max(peakRssBytes ?? 0, rss);
      const inKafka = await topicRecords(admin, topic);
      if (inKafka >= rows) break;
      if (!connect.running) throw new Error(`Kafka Connect exited: ${firstProblem(connect.output)}`);
      if (connect.fatal) throw new Error(`the connector failed: ${firstProblem(connect.output)}`);
      if (performance.now() > started + opts.deadlineMs)
        throw new Error(
          `Debezium drained ${inKafka} of ${rows} rows in ${opts.deadlineMs / 1000} s; ${firstProblem(connect.output)}`,
        );
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const drained = performance.now();
    const seconds = (drained - started) / 1000;
    const cpuAtEnd = cpuSeconds(connect.pid);
    const startSeconds = (started - spawned) / 1000;
    log(`  Debezium: ${seconds.toFixed(2)} s (+${startSeconds.toFixed(1)} s start-up)`);

    const confirm = await settledConfirm(walnut, opts.slot, opts.endLsn, drained);
    log(
      `  Debezium's slot: confirmed ${confirm.confirmedLsn} (${confirm.shortOfEndBytes} bytes short of the end LSN) ${confirm.seconds.toFixed(2)} s after the drain`,
    );
    return {
      rowsPerTx: opts.rowsPerTx,
      rows,
      seconds,
      startSeconds,
      cpuSeconds: cpuAtStart === null || cpuAtEnd === null ? null : cpuAtEnd - cpuAtStart,
      peakRssBytes,
      confirm,
    };
  } finally {
    await admin.disconnect();
    await connect.stop();
  }
}

/** Watches the slot until it reaches `endLsn` or has not advanced for two offset flushes and 5 s more. */
async function settledConfirm(
  walnut: WalnutFixture,
  slot: string,
  endLsn: string,
  drained: number,
): Promise<SettledConfirm> {
  const quietSeconds = (2 * OFFSET_FLUSH_INTERVAL_MS) / 1000 + 5;
  let last = '';
  let lastAt = drained;
  for (;;) {
    const { rows } = await walnut.pool.query<{ lsn: string; short: string }>(
      `SELECT confirmed_flush_lsn::text AS lsn, greatest(pg_wal_lsn_diff($2::pg_lsn, confirmed_flush_lsn), 0)::text AS short
       FROM pg_replication_slots WHERE slot_name = $1`,
      [slot, endLsn],
    );
    const row = rows[0];
    if (!row) throw new Error(`slot ${slot} is gone`);
    const now = performance.now();
    if (row.lsn !== last) {
      last = row.lsn;
      lastAt = now;
    }
    if (Number(row.short) === 0 || now - lastAt > quietSeconds * 1000)
      return {
        seconds: (lastAt - drained) / 1000,
        confirmedLsn: row.lsn,
        shortOfEndBytes: Number(row.short),
        quietSeconds,
      };
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/**
 * The worker's first ERROR line with the deepest cause of the exception logged under it (else its
 * first WARN, else its last line): the ERROR line alone is often just "Producer failure".
 */
function firstProblem(output: readonly string[]): string {
  const i = output.findIndex((l) => / ERROR /.test(l));
  if (i < 0) return (output.find((l) => / WARN /.test(l)) ?? output.at(-1) ?? 'no output').trim().slice(0, 500);
  const trace: string[] = [];
  for (const line of output.slice(i + 1)) {
    if (line.startsWith('[')) break; // the next log entry
    if (!/^\s+(at |\.\.\. \d+ more)/.test(line)) trace.push(line.trim());
  }
  const cause = trace.filter((l) => l.startsWith('Caused by:')).at(-1) ?? trace[0];
  return [output[i]?.trim(), cause].filter(Boolean).join(' / ').slice(0, 800);
}
