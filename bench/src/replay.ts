/**
 * Replay throughput: `walnut-relay replay --all` re-publishing the rows a live
 * drain has just relayed (same database, same outbox rows, same mapping env),
 * to a fresh topic, as a child process on this machine. The live relay of that
 * drain is stopped first, so the two never share the cores.
 */
import { once } from 'node:events';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startNodeScript, type WalnutFixture } from '@walnut/stack';
import { createTopic, topicRecords } from './kafka-topics.ts';

/** Rows read, sent and acked per page: the command's default, passed explicitly. */
export const REPLAY_PAGE_SIZE = 1000;

/** The command's own `replay.done` line. */
export interface ReplayDone {
  rows: number;
  seconds: number;
  rowsPerSecond: number;
}

export interface ReplayResult {
  /** Rows per transaction of the drain whose rows were replayed. */
  drainRowsPerTx: number;
  rows: number;
  /** Spawn to exit, by the benchmark's clock: node start, connections, count, every page acked. */
  seconds: number;
  rowsPerSecond: number;
  /**
   * The command's own figure: timed from just before its Kafka producer starts until the last page is
   * acked, so its process start, its connections to Postgres and its count of the rows are left out.
   */
  command: ReplayDone;
  /**
   * Offsets taken in the fresh topic afterwards: the sum of its partitions' high watermarks,
   * the replayed records plus one commit marker per partition per Kafka transaction.
   */
  topicRecords: number;
  pageSize: number;
  /** The page order the command chose, from its progress file: (created_at, id) or (id). */
  order: string[];
  /** The outbox's btree indexes when it ran, each as its key columns: the order follows from them. */
  outboxIndexes: string[][];
}

export type ReplayOutcome = ReplayResult | { drainRowsPerTx: number; failed: string };

let replays = 0;

export async function measureReplay(
  walnut: WalnutFixture,
  opts: {
    /** The env the live relay of the drain ran with: its mapping (RELAY_TOPIC_TEMPLATE etc.) applies. */
    relayEnv: Record<string, string>;
    rows: number;
    drainRowsPerTx: number;
    deadlineMs: number;
    log: (line: string) => void;
  },
): Promise<ReplayResult> {
  const { rows, log } = opts;
  const topic = `bench.replay-r${++replays}_tx${opts.drainRowsPerTx}_n${rows}`;
  await createTopic(walnut.kafka, topic);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'walnut-bench-replay-'));
  const progressFile = path.join(dir, 'progress.json');
  const args = [
    'replay',
    '--all',
    '--to-topic',
    topic,
    '--progress-file',
    progressFile,
    '--page-size',
    String(REPLAY_PAGE_SIZE),
  ];
  log(`replaying the same ${rows} rows: walnut-relay ${args.join(' ')}`);
  const spawned = performance.now();
  const replay = startNodeScript('replay', 'packages/cdc-relay/bin/walnut-relay.js', args, {
    ...walnut.env,
    ...opts.relayEnv,
  });
  // 'close' comes after the exit and after stdout and stderr have ended: every line is in.
  const exited = once(replay.child, 'exit').then(() => performance.now());
  const closed = once(replay.child, 'close');
  const timer = setTimeout(() => void replay.stop('SIGTERM', 10_000), opts.deadlineMs);
  const admin = walnut.kafka.admin();
  try {
    const exitedAt = await exited;
    await closed;
    clearTimeout(timer);
    const seconds = (exitedAt - spawned) / 1000;
    const code = replay.child.exitCode;
    if (code !== 0) {
      const why = replay.child.signalCode ?? `exit ${code}`;
      const late = seconds * 1000 >= opts.deadlineMs ? ` (stopped after ${opts.deadlineMs / 1000} s)` : '';
      throw new Error(`walnut-relay replay ended with ${why}${late}: ${replay.tail(5)}`);
    }
    const command = doneLine(replay.output);
    if (!command) throw new Error(`walnut-relay replay exited 0 without a replay.done line: ${replay.tail(5)}`);
    await admin.connect();
    const inTopic = await topicRecords(admin, topic);
    // The replay's transactions' commit markers take offsets too: at least one per record.
    if (command.rows !== rows || inTopic < rows) {
      throw new Error(
        `walnut-relay replay reported ${command.rows} rows and ${topic} holds ${inTopic}; expected ${rows}`,
      );
    }
    const order = await progressOrder(progressFile);
    const outboxIndexes = await btreeIndexes(walnut);
    const result: ReplayResult = {
      drainRowsPerTx: opts.drainRowsPerTx,
      rows,
      seconds,
      rowsPerSecond: rows / seconds,
      command,
      topicRecords: inTopic,
      pageSize: REPLAY_PAGE_SIZE,
      order,
      outboxIndexes,
    };
    log(
      `  replay: ${seconds.toFixed(2)} s spawn to exit (${Math.round(result.rowsPerSecond)} rows/s); its own figure ${command.seconds.toFixed(2)} s (${command.rowsPerSecond} rows/s); ${inTopic} records in ${topic}; pages in (${order.join(', ')}) order; outbox indexes ${outboxIndexes.map((c) => `(${c.join(', ')})`).join(', ')}`,
    );
    return result;
  } finally {
    clearTimeout(timer);
    await replay.stop('SIGTERM', 10_000);
    await admin.disconnect();
    await rm(dir, { recursive: true, force: true });
  }
}

/** The `order` the command saved in its progress file: the columns its pages went by. */
async function progressOrder(file: string): Promise<string[]> {
  const state = JSON.parse(await readFile(file, 'utf8')) as { order?: unknown };
  const { order } = state;
  if (!Array.isArray(order) || !order.every((c) => typeof c === 'string') || order.length === 0)
    throw new Error(`${file} holds no page order`);
  return order;
}

/** The key columns of each btree index on public.outbox (Walnut's migrations made the table). */
async function btreeIndexes(walnut: WalnutFixture): Promise<string[][]> {
  const { rows } = await walnut.pool.query<{ columns: string[] }>(
    `SELECT array_agg(a.attname::text ORDER BY k.n) AS columns
       FROM pg_index i
       JOIN pg_class t ON t.oid = i.indrelid
       JOIN pg_class ix ON ix.oid = i.indexrelid
       JOIN pg_am am ON am.oid = ix.relam
       CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, n)
       JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum
      WHERE t.oid = 'public.outbox'::regclass AND am.amname = 'btree' AND i.indpred IS NULL
      GROUP BY i.indexrelid, ix.relname
      ORDER BY ix.relname`,
  );
  return rows.map((r) => r.columns);
}

/** The last `replay.done` JSON line of the command's output. */
function doneLine(output: readonly string[]): ReplayDone | undefined {
  for (let i = output.length - 1; i >= 0; i--) {
    const line = output[i]?.trim();
    if (!line?.startsWith('{')) continue;
    try {
      const entry = JSON.parse(line) as { event?: string; rows?: unknown; seconds?: unknown; rowsPerSecond?: unknown };
      if (entry.event !== 'replay.done') continue;
      const { rows, seconds, rowsPerSecond } = entry;
      if (typeof rows === 'number' && typeof seconds === 'number' && typeof rowsPerSecond === 'number')
        return { rows, seconds, rowsPerSecond };
    } catch {}
  }
  return undefined;
}
