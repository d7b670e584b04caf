/**
 * Drain throughput: N outbox rows are committed while nothing consumes them,
 * then a consumer is started and timed until every row is out. The slots exist
 * before the writes, because a slot only sees what commits after it.
 */
import { freePort, startWalnutProcess, type WalnutFixture } from '@walnut/stack';
import { createTopic, topicRecords } from './kafka-topics.ts';
import { pgRecvlogicalSeconds } from './limits.ts';
import { createPollingOutbox, PollingRelay } from './polling-relay.ts';
import { cpuSeconds } from './proc-stats.ts';
import type { DrainTarget } from './sinks.ts';
import { fill, PAYLOAD_BYTES } from './workload.ts';

export interface DrainResult {
  rowsPerTx: number;
  payloadBytes: number;
  rows: number;
  fillSeconds: number;
  /** The WAL insert position after the rows (and one flushing commit outside the publication). */
  endLsn: string;
  recvlogicalSeconds: number;
  relaySeconds: number;
  /** Spawn to "streaming": node + tsx start-up, connect, slot checks. Not in relaySeconds. */
  relayStartSeconds: number;
  relayPeakRssBytes: number | null;
  /** CPU seconds (user + system) the relay process used during the drain, start-up excluded. */
  relayCpuSeconds: number | null;
  /** Produce requests (Kafka) or MULTI/EXEC pipelines (Redis) the relay sent: rows / this is its batch. */
  relayRequests: number;
}

export const PUBLICATION = 'bench_outbox';
/** Numbers every drain's slots and topic: two drains of the same shape must not find each other's records. */
let drains = 0;
const log = (line: string) => console.log(`bench: ${line}`);

export interface DrainOptions {
  /** When set, the relay runs with `node --cpu-prof` and writes its profile here at exit. */
  profileDir?: string | undefined;
  /** Relay settings over the fixture's (e.g. RELAY_DELIVERY); the drain's own slot, topic and port still apply. */
  relayEnv?: Record<string, string>;
  /** Names the drain in its slots, topic and log lines, e.g. its delivery mode. */
  label?: string;
  /**
   * Runs once every row is relayed and the relay has stopped, before the outbox is emptied: a
   * measurement of the same rows (replay.ts). `relayEnv` is the whole env the relay ran with.
   */
  afterDrain?: (drain: DrainResult, relayEnv: Record<string, string>) => Promise<void>;
  /**
   * More pgoutput slots created with the relay's, before the rows, for another consumer of the
   * same rows in `afterDrain` (Debezium); each is dropped at the end.
   */
  extraSlots?: string[];
  /** Where the relay sends the rows; Kafka (the fixture's brokers) when absent. */
  sink?: DrainTarget;
}

export async function drainWalnut(
  walnut: WalnutFixture,
  rows: number,
  rowsPerTx: number,
  payloadBytes = PAYLOAD_BYTES,
  deadlineMs = 600_000,
  opts: DrainOptions = {},
): Promise<DrainResult> {
  const { pool } = walnut;
  const { profileDir, label } = opts;
  const tag = label ? `_${label.replace(/[^a-z0-9]+/gi, '_').toLowerCase()}` : '';
  const name = `d${++drains}${tag}_tx${rowsPerTx}_p${payloadBytes}_n${rows}`;
  const slot = `bench_relay_${name}`;
  const recvSlot = `bench_recv_${name}`;
  const topic = `bench.walnut-${name}.kv`;
  if (opts.sink) await opts.sink.prepare(topic);
  else await createTopic(walnut.kafka, topic);
  await pool.query(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, [slot]);
  await pool.query(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, [recvSlot]);
  const extraSlots = opts.extraSlots ?? [];
  for (const s of extraSlots) await pool.query(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, [s]);

  log(`writing ${rows} rows of ${payloadBytes} B in ${rowsPerTx}-row transactions${label ? ` (relay ${label})` : ''}`);
  const { seconds: fillSeconds, endLsn } = await fill(pool, 'outbox', rows, rowsPerTx, payloadBytes);
  log(`  written in ${fillSeconds.toFixed(1)} s, WAL end ${endLsn}`);

  const recvlogicalSeconds = await pgRecvlogicalSeconds({
    databaseUrl: walnut.databaseUrl,
    slot: recvSlot,
    publication: PUBLICATION,
    endLsn,
    timeoutMs: 600_000,
  });
  log(`  pg_recvlogical: ${recvlogicalSeconds.toFixed(2)} s`);
  await pool.query('SELECT pg_drop_replication_slot($1)', [recvSlot]);

  const spawned = performance.now();
  const httpPort = await freePort();
  const relayEnv = {
    ...walnut.env,
    ...opts.sink?.relayEnv,
    ...opts.relayEnv,
    RELAY_SLOT: slot,
    RELAY_PUBLICATION: PUBLICATION,
    RELAY_TOPIC_TEMPLATE: `bench.walnut-${name}.{aggregatetype}`,
    RELAY_HTTP_PORT: String(httpPort),
  };
  const relay = startWalnutProcess('relay', relayEnv, profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : []);
  let relayPeakRssBytes: number | null = null;
  try {
    await relay.waitForLine(/"state":"streaming"/);
    const started = performance.now();
    const cpuAtStart = cpuSeconds(relay.pid);
    const deadline = started + deadlineMs;
    for (;;) {
      const rss = relay.rssBytes();
      if (rss !== null) relayPeakRssBytes = Math.max(relayPeakRssBytes ?? 0, rss);
      // The relay's own count of records its sink acked (in exactly-once, in committed Kafka
      // transactions): a topic's offsets also count commit markers, so they would end early.
      if ((await relayedEvents(httpPort)) >= rows) break;
      if (!relay.running) throw new Error(`relay exited: ${firstProblem(relay.output)}`);
      if (performance.now() > deadline) {
        const relayed = await relayedEvents(httpPort);
        throw new Error(
          `relay drained ${relayed} of ${rows} rows in ${deadlineMs / 1000} s; its first warning: ${firstProblem(relay.output)}`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const relaySeconds = (performance.now() - started) / 1000;
    const cpuAtEnd = cpuSeconds(relay.pid);
    const relayCpuSeconds = cpuAtStart === null || cpuAtEnd === null ? null : cpuAtEnd - cpuAtStart;
    const relayStartSeconds = (started - spawned) / 1000;
    const relayRequests = await relayMetric(httpPort, 'walnut_relay_produce_requests_total');
    log(
      `  walnut relay${opts.sink ? ` to ${opts.sink.name}` : ''}: ${relaySeconds.toFixed(2)} s (+${relayStartSeconds.toFixed(1)} s start-up), ${relayRequests} requests, CPU ${relayCpuSeconds?.toFixed(2) ?? '?'} s`,
    );
    const result: DrainResult = {
      rowsPerTx,
      payloadBytes,
      rows,
      fillSeconds,
      endLsn,
      recvlogicalSeconds,
      relaySeconds,
      relayStartSeconds,
      relayPeakRssBytes,
      relayCpuSeconds,
      relayRequests,
    };
    if (opts.afterDrain) {
      // Alone on the machine's cores: the relay's work is done.
      await relay.stop('SIGTERM');
      await opts.afterDrain(result, relayEnv);
    }
    return result;
  } finally {
    await relay.stop('SIGTERM');
    await opts.sink?.forget(topic).catch((error) => log(`  could not drop ${topic}: ${error}`));
    for (const s of [slot, ...extraSlots]) await pool.query('SELECT pg_drop_replication_slot($1)', [s]).catch(() => {});
    // The rows are relayed: keep the database small for the next scenario.
    await pool.query('TRUNCATE outbox');
  }
}

export interface PollingDrainResult {
  rowsPerTx: number;
  rows: number;
  seconds: number;
}

export async function drainPolling(
  walnut: WalnutFixture,
  rows: number,
  rowsPerTx: number,
): Promise<PollingDrainResult> {
  const { pool } = walnut;
  const table = `bench_polling_outbox_tx${rowsPerTx}`;
  const topic = `bench.polling-tx${rowsPerTx}.kv`;
  await createPollingOutbox(pool, table);
  await createTopic(walnut.kafka, topic);
  log(`writing ${rows} rows in ${rowsPerTx}-row transactions (polling table)`);
  const { seconds: fillSeconds } = await fill(pool, table, rows, rowsPerTx);
  log(`  written in ${fillSeconds.toFixed(1)} s`);
  const poller = new PollingRelay({ pool, kafka: walnut.kafka, table, topic });
  const admin = walnut.kafka.admin();
  await admin.connect();
  try {
    // Timed from connected, as Walnut's relay is from "streaming".
    await poller.start();
    const started = performance.now();
    const deadline = started + 900_000;
    while (poller.sent < rows) {
      if (poller.error) throw poller.error;
      if (performance.now() > deadline) throw new Error(`polling relay did not drain ${rows} rows in 900 s`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const seconds = (performance.now() - started) / 1000;
    const inKafka = await topicRecords(admin, topic);
    if (inKafka < rows) throw new Error(`polling relay marked ${rows} sent but Kafka holds ${inKafka}`);
    log(`  polling relay: ${seconds.toFixed(2)} s`);
    return { rowsPerTx, rows, seconds };
  } finally {
    await poller.stop();
    await admin.disconnect();
    await pool.query(`DROP TABLE ${table}`);
  }
}

/** The relay's first warning or error log line, which names the cause better than the retries after it. */
function firstProblem(output: readonly string[]): string {
  for (const line of output) {
    try {
      const entry = JSON.parse(line) as { level?: number; msg?: string; error?: string; kafka?: { error?: string } };
      if ((entry.level ?? 0) >= 40) return [entry.msg, entry.error ?? entry.kafka?.error].filter(Boolean).join(': ');
    } catch {
      if (line.trim()) return line.trim();
    }
  }
  return 'none logged';
}

/** walnut_relay_events_total from the relay's /metrics: records its sink acked (exactly-once: committed). */
function relayedEvents(port: number): Promise<number> {
  return relayMetric(port, 'walnut_relay_events_total');
}

/** A counter from the relay's /metrics, summed over its labels. */
async function relayMetric(port: number, name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  let sum = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith(`${name} `) || line.startsWith(`${name}{`))
      sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}
