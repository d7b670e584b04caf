/**
 * `pnpm bench [--full]`: starts a private Postgres and Kafka, measures, and
 * writes docs/benchmarks.md with its chart. Quick mode (the default) takes a
 * few minutes; --full drains 200,000 rows per scenario.
 */
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ensureKafkaJars, startStack, walnutFixture } from '@walnut/stack';
import { type Bar, barChartSvg } from './chart.ts';
import { type DrainResult, drainPolling, drainWalnut, type PollingDrainResult, PUBLICATION } from './drain.ts';
import { createTopic } from './kafka-topics.ts';
import { type LatencyResult, measureLatency } from './latency.ts';
import { kafkaProducerPerf, type ProducerPerfResult, pgRecvlogicalSeconds } from './limits.ts';
import { renderMarkdown, type SweepPoint } from './report.ts';
import { installWorkload, PAYLOAD_BYTES } from './workload.ts';
import { apiWriteThroughput, pgbenchTps, type WriteThroughput } from './write-throughput.ts';

const KAFKA_VERSION = '4.1.1';
const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const log = (line: string) => console.log(`bench: ${line}`);

const { values } = parseArgs({
  options: {
    full: { type: 'boolean', default: false },
    rows: { type: 'string' },
    'skip-polling': { type: 'boolean', default: false },
    'skip-latency': { type: 'boolean', default: false },
    'skip-writes': { type: 'boolean', default: false },
    'skip-sweep': { type: 'boolean', default: false },
  },
});
const mode = values.full ? 'full' : 'quick';
const rows = values.rows ? Number(values.rows) : values.full ? 200_000 : 50_000;
if (!Number.isInteger(rows) || rows < 100 || rows % 100 !== 0) {
  console.error('bench: --rows must be a positive multiple of 100');
  process.exit(2);
}

const loadStart = os.loadavg()[0] ?? 0;
// What was measured: the code at this commit, plus whatever was uncommitted when the run started.
const git = (...args: string[]) => execFileSync('git', args, { cwd: repoRoot, encoding: 'utf8' }).trim();
const commit = `${git('rev-parse', '--short', 'HEAD')}${git('status', '--porcelain', '--', 'packages', 'tools') ? ' with uncommitted changes under packages/ or tools/' : ''}`;
const dir = await mkdtemp(path.join(os.tmpdir(), 'walnut-bench-'));
log(`${mode} mode, ${rows} rows per scenario; private stack in ${dir}`);
// Its own services, whatever the environment says: the numbers must not depend on a shared broker.
const stack = await startStack({ dir, env: {}, log: (line) => log(`stack: ${line}`) });
const walnut = await walnutFixture('bench', { databaseUrl: stack.databaseUrl, brokers: stack.kafkaBrokers });
let failed = false;
try {
  const { pool } = walnut;
  await installWorkload(pool);
  await pool.query(`CREATE PUBLICATION ${PUBLICATION} FOR TABLE public.outbox WITH (publish = 'insert')`);
  const postgres =
    (await pool.query<{ server_version: string }>('SHOW server_version')).rows[0]?.server_version ?? 'unknown';
  const kafkajs = JSON.parse(await readFile(path.join(repoRoot, 'node_modules/kafkajs/package.json'), 'utf8')).version;

  // pg_recvlogical's time includes its own start, connection and exit: measure that alone once.
  await pool.query(`SELECT pg_create_logical_replication_slot('bench_recv_empty', 'pgoutput')`);
  const emptyLsn = (await pool.query<{ lsn: string }>('SELECT pg_current_wal_insert_lsn()::text AS lsn')).rows[0]?.lsn;
  const recvlogicalEmptySeconds = await pgRecvlogicalSeconds({
    databaseUrl: walnut.databaseUrl,
    slot: 'bench_recv_empty',
    publication: PUBLICATION,
    endLsn: emptyLsn ?? '0/0',
    timeoutMs: 60_000,
  });
  await pool.query(`SELECT pg_drop_replication_slot('bench_recv_empty')`);
  log(`pg_recvlogical with nothing to decode: ${recvlogicalEmptySeconds.toFixed(2)} s`);

  const walnutResults: DrainResult[] = [];
  for (const rowsPerTx of [1, 100]) walnutResults.push(await drainWalnut(walnut, rows, rowsPerTx));

  // Scaling: payload size at 100-row transactions, then rows per transaction at 1 KB.
  const sweepRows = values.full ? 100_000 : 20_000;
  const sweep: SweepPoint[] = [];
  if (!values['skip-sweep']) {
    const points = [
      ...[128, 1024, 8192].map((payloadBytes) => ({ rowsPerTx: 100, payloadBytes })),
      ...[1, 10, 1000].map((rowsPerTx) => ({ rowsPerTx, payloadBytes: PAYLOAD_BYTES })),
    ];
    // A point that does not drain is reported as such, with the relay's first warning, and the run goes on.
    const deadlineMs = values.full ? 300_000 : 60_000;
    for (const { rowsPerTx, payloadBytes } of points) {
      try {
        sweep.push(await drainWalnut(walnut, sweepRows, rowsPerTx, payloadBytes, deadlineMs));
      } catch (error) {
        const reason = error instanceof Error ? error.message : String(error);
        log(`  failed: ${reason}`);
        sweep.push({ rowsPerTx, payloadBytes, failed: reason });
      }
    }
  }

  log(`Kafka ProducerPerformance, ${rows} records of ${PAYLOAD_BYTES} bytes, acks=all`);
  const perfTopic = 'bench.producer-perf';
  await createTopic(walnut.kafka, perfTopic);
  const kafka: ProducerPerfResult = await kafkaProducerPerf({
    jarDir: await ensureKafkaJars(),
    brokers: stack.kafkaBrokers,
    topic: perfTopic,
    records: rows,
    recordBytes: PAYLOAD_BYTES,
    timeoutMs: 600_000,
  });
  log(`  ${kafka.line}`);

  const polling: PollingDrainResult[] = [];
  if (!values['skip-polling'])
    for (const rowsPerTx of [1, 100]) polling.push(await drainPolling(walnut, rows, rowsPerTx));

  const latency: LatencyResult[] = [];
  const latencySeconds = values.full ? 60 : 10;
  let writes: WriteThroughput | undefined;
  if (!values['skip-latency'] || !values['skip-writes']) {
    // The whole of Walnut, as deployed: api, relay and applier processes.
    await walnut.startRelay();
    await walnut.startApplier();
    const api = await walnut.startApi();
    // Warm-up, not counted: first connections, JIT, the applier's group join.
    await measureLatency({ apiUrl: api.url, pool, ratePerSecond: 100, seconds: 3, label: 'warmup' });
    for (const ratePerSecond of values['skip-latency'] ? [] : [200, 1_000]) {
      log(`end-to-end latency at ${ratePerSecond} writes/s for ${latencySeconds} s`);
      const result = await measureLatency({
        apiUrl: api.url,
        pool,
        ratePerSecond,
        seconds: latencySeconds,
        label: String(ratePerSecond),
      });
      log(
        `  202→kvs p50 ${result.apply.p50.toFixed(1)} p95 ${result.apply.p95.toFixed(1)} p99 ${result.apply.p99.toFixed(1)} max ${result.apply.max.toFixed(1)} ms; ${result.applied}/${result.sent} applied, ${result.failed} failed, ${result.shed} shed`,
      );
      latency.push(result);
    }
    if (!values['skip-writes']) {
      const clients = 32;
      const seconds = values.full ? 30 : 10;
      log(`API write throughput, ${clients} clients closed loop for ${seconds} s`);
      const apiRun = await apiWriteThroughput({ apiUrl: api.url, clients, seconds });
      log(`  ${apiRun.writesPerSecond.toFixed(0)} writes/s (${apiRun.failed} failed)`);
      log(`pgbench, the same transaction, ${clients} connections for ${seconds} s`);
      const scriptDir = await mkdtemp(path.join(os.tmpdir(), 'walnut-bench-pgbench-'));
      try {
        const pgb = await pgbenchTps({ databaseUrl: walnut.databaseUrl, dir: scriptDir, clients, seconds });
        log(`  ${pgb.line}`);
        writes = {
          clients,
          seconds,
          apiWritesPerSecond: apiRun.writesPerSecond,
          apiFailed: apiRun.failed,
          pgbenchTps: pgb.tps,
          pgbenchLine: pgb.line,
        };
      } finally {
        await rm(scriptDir, { recursive: true, force: true });
      }
    }
  }

  const bars: Bar[] = [];
  for (const w of walnutResults) {
    bars.push({ label: `Walnut relay, ${w.rowsPerTx}-row tx`, value: w.rows / w.relaySeconds, group: 'walnut' });
  }
  for (const p of polling) {
    bars.push({ label: `polling relay, ${p.rowsPerTx}-row tx`, value: p.rows / p.seconds, group: 'polling' });
  }
  for (const w of walnutResults) {
    bars.push({ label: `pg_recvlogical, ${w.rowsPerTx}-row tx`, value: w.rows / w.recvlogicalSeconds, group: 'limit' });
  }
  bars.push({ label: 'Kafka ProducerPerformance, acks=all', value: kafka.recordsPerSecond, group: 'limit' });
  const chart = 'benchmarks-drain.svg';
  await writeFile(
    path.join(repoRoot, 'docs', chart),
    barChartSvg(`Drain of ${rows.toLocaleString('en-US')} 1 KB outbox rows (${mode} mode)`, 'events/s', bars),
  );

  let latencyChart: string | undefined;
  if (latency.length > 0) {
    latencyChart = 'benchmarks-latency.svg';
    const latencyBars: Bar[] = latency.flatMap((l) =>
      (['p50', 'p95', 'p99', 'max'] as const).map((q) => ({
        label: `${l.offeredPerSecond} writes/s, ${q}`,
        value: l.apply[q],
        group: String(l.offeredPerSecond),
      })),
    );
    await writeFile(
      path.join(repoRoot, 'docs', latencyChart),
      barChartSvg(
        `Walnut end to end: 202 → readable in kvs (${mode} mode)`,
        'milliseconds',
        latencyBars,
        'shorter is better',
      ),
    );
  }

  const cpus = os.cpus();
  const markdown = renderMarkdown({
    env: {
      date: new Date().toISOString(),
      mode,
      cores: cpus.length,
      cpuModel: cpus[0]?.model.trim() ?? 'unknown',
      memoryBytes: os.totalmem(),
      node: process.version,
      postgres,
      kafka: KAFKA_VERSION,
      kafkajs,
      commit,
      loadStart,
      loadEnd: os.loadavg()[0] ?? 0,
    },
    rows,
    walnut: walnutResults,
    polling,
    kafka,
    kafkaRecords: rows,
    chart,
    sweep,
    sweepRows,
    recvlogicalEmptySeconds,
    latency,
    latencySeconds,
    writes,
    latencyChart,
    notes: [
      "End-to-end latency of the polling baseline (only its drain throughput is measured): the applier's version guard needs the walnut-commit-lsn/walnut-seq headers that only a WAL relay has.",
      "Relay RSS per 100k events as a curve: only the peak RSS during each drain is shown above; CPU per 100k events is the drain's CPU time scaled, not a separate run.",
      "Kafka's produce limit at payload sizes other than 1 KB (the scaling table has no Kafka column).",
    ],
  });
  await writeFile(path.join(repoRoot, 'docs', 'benchmarks.md'), markdown);
  log('wrote docs/benchmarks.md and its charts');
} catch (error) {
  failed = true;
  console.error('bench: failed:', error);
} finally {
  await walnut.close().catch((error) => log(`close: ${error}`));
  await stack.stop().catch((error) => log(`stack stop: ${error}`));
  await rm(dir, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
