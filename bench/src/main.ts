/**
 * `pnpm bench [--full]`: starts a private Postgres and Kafka, measures, and
 * writes docs/benchmarks.md with its charts. Quick mode (the default) takes a
 * few minutes; --full drains 200,000 rows per scenario and holds each fixed
 * load for 60 s. The size flags exist for short checks of the benchmark itself.
 */
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ensureKafkaJars, type PostgresHandle, startPostgres, startStack, walnutFixture } from '@walnut/stack';
import { drainBars, latencyBars, sweepBars } from './benchmark-charts.ts';
import { barChartSvg } from './chart.ts';
import { mainThreadProfile, topFrames } from './cpu-profile.ts';
import { type DebeziumOutcome, drainDebezium } from './debezium-drain.ts';
import { type DrainResult, drainPolling, drainWalnut, type PollingDrainResult, PUBLICATION } from './drain.ts';
import { measureFootprint } from './footprint.ts';
import { createTopic } from './kafka-topics.ts';
import { kafkaProducerPerf, type ProducerPerfResult, type ProducerSettings, pgRecvlogicalSeconds } from './limits.ts';
import { type LoadStep, runLoadSteps, type SystemUnderLoad } from './load-steps.ts';
import { startNatsSink } from './nats-bench-sink.ts';
import { startPollingDeployment } from './polling-deployment.ts';
import { startRedisSink } from './redis-bench-sink.ts';
import { measureReplay, type ReplayOutcome } from './replay.ts';
import { renderMarkdown } from './report.ts';
import { withKeptPart } from './report-kept.ts';
import { runSweep, type SweepPoint } from './scaling-sweep.ts';
import { drainToSink } from './sink-drains.ts';
import type { BenchSink, SinkRun } from './sinks.ts';
import { startWalnutDeployment, walnutSystem } from './walnut-deployment.ts';
import { fill, installWorkload, PAYLOAD_BYTES } from './workload.ts';
import { measureWrites, type WriteThroughput } from './write-throughput.ts';

const KAFKA_VERSION = '4.1.1';
const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const log = (line: string) => console.log(`bench: ${line}`);

const { values } = parseArgs({
  options: {
    full: { type: 'boolean', default: false },
    rows: { type: 'string' },
    'sweep-rows': { type: 'string' },
    'latency-seconds': { type: 'string' },
    'search-steps': { type: 'string' },
    'write-seconds': { type: 'string' },
    'skip-polling': { type: 'boolean', default: false },
    'skip-latency': { type: 'boolean', default: false },
    'skip-writes': { type: 'boolean', default: false },
    'skip-sweep': { type: 'boolean', default: false },
    'skip-footprint': { type: 'boolean', default: false },
    'skip-exactly-once': { type: 'boolean', default: false },
    'skip-replay': { type: 'boolean', default: false },
    debezium: { type: 'boolean', default: false },
    'skip-sinks': { type: 'boolean', default: false },
    profile: { type: 'boolean', default: false },
  },
});
const mode = values.full ? 'full' : 'quick';
/** Debezium beside the relay's at-least-once drains: on demand (its jars are a Maven fetch), always in --full. */
const withDebezium = values.debezium || values.full;
/** The relay's drains to its other sinks (Redis Streams, NATS JetStream), each beside its own limit. */
const withSinks = !values['skip-sinks'];
/** A flag's whole number, its mode's default when absent; exits on anything else. */
function intFlag(
  name: 'rows' | 'sweep-rows' | 'latency-seconds' | 'search-steps' | 'write-seconds',
  quick: number,
  full: number,
  min: number,
): number {
  const raw = values[name];
  if (raw === undefined) return values.full ? full : quick;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min) {
    console.error(`bench: --${name} must be a whole number of at least ${min}`);
    process.exit(2);
  }
  return n;
}
const rows = intFlag('rows', 50_000, 200_000, 100);
if (rows % 100 !== 0) {
  console.error('bench: --rows must be a positive multiple of 100');
  process.exit(2);
}
/** Most rows per scaling point; large payloads get fewer (see runSweep's byte budget). */
const sweepRows = intFlag('sweep-rows', 20_000, 100_000, 1);
/** Seconds at each fixed offered load (200 and 1,000 writes/s). */
const latencySeconds = intFlag('latency-seconds', 10, 60, 1);
/** Seconds at each step of the search for the highest sustained load: shorter, there are several. */
const searchSeconds = Math.min(latencySeconds, values.full ? 20 : 8);
const maxSearchSteps = intFlag('search-steps', 3, 6, 0);
const writeSeconds = intFlag('write-seconds', 10, 30, 1);

const loadStart = os.loadavg()[0] ?? 0;
// What was measured: the code at this commit, plus whatever was uncommitted when the run started.
const git = (...args: string[]) => execFileSync('git', args, { cwd: repoRoot, encoding: 'utf8' }).trim();
const commit = `${git('rev-parse', '--short', 'HEAD')}${git('status', '--porcelain', '--', 'packages', 'tools', 'bench/src') ? ' with uncommitted changes under packages/, tools/ or bench/src/' : ''}`;
// The relay runs as it ships: its bundled build, made from the sources being measured.
execFileSync(process.execPath, ['--import', 'tsx', 'packages/cdc-relay/build.ts'], { cwd: repoRoot, stdio: 'inherit' });
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

  // pg_recvlogical's time includes its own start, connection and exit, and whatever it takes to
  // stop at --endpos: measure that once, on one row. (On an empty slot it exits at once, because
  // it starts at its end position, which hides the second part.)
  await pool.query(`SELECT pg_create_logical_replication_slot('bench_recv_one', 'pgoutput')`);
  const { endLsn: oneRowLsn } = await fill(pool, 'outbox', 1, 1);
  const recvlogicalOneRowSeconds = await pgRecvlogicalSeconds({
    databaseUrl: walnut.databaseUrl,
    slot: 'bench_recv_one',
    publication: PUBLICATION,
    endLsn: oneRowLsn,
    timeoutMs: 60_000,
  });
  await pool.query(`SELECT pg_drop_replication_slot('bench_recv_one')`);
  await pool.query('TRUNCATE outbox');
  log(`pg_recvlogical with one row to decode: ${recvlogicalOneRowSeconds.toFixed(2)} s`);

  const footprint = values['skip-footprint'] ? undefined : await measureFootprint(walnut, values.full ? 60 : 30, log);

  const walnutResults: DrainResult[] = [];
  /** The same drains, after them, with each produce request one Kafka transaction at a time: what exactly-once costs. */
  const exactlyOnceResults: DrainResult[] = [];
  /**
   * `walnut-relay replay --all` of the rows an at-least-once drain (like the replay's producer) has
   * just relayed: after the drain in 100-row transactions, and after the one in a single transaction,
   * whose rows all share one created_at (the case that made pages quadratic before 489a187).
   */
  const replays: ReplayOutcome[] = [];
  /** Debezium's drain of each at-least-once drain's rows, from a slot created beside the relay's. */
  const debezium: DebeziumOutcome[] = [];
  for (const delivery of values['skip-exactly-once'] ? ['at-least-once'] : ['at-least-once', 'exactly-once']) {
    // The last: every row in one transaction, which Postgres hands over only at its commit and
    // the relay can confirm only when Kafka has acked all of it: its memory must stay bounded.
    for (const rowsPerTx of [1, 100, rows]) {
      const profileDir = values.profile
        ? await mkdtemp(path.join(os.tmpdir(), `walnut-profile-${delivery}-tx${rowsPerTx}-`))
        : undefined;
      const replayHere = !values['skip-replay'] && delivery === 'at-least-once' && rowsPerTx !== 1;
      const debeziumHere = withDebezium && delivery === 'at-least-once';
      const debeziumSlot = `bench_debezium_tx${rowsPerTx}_n${rows}`;
      const replay = async (drain: DrainResult, relayEnv: Record<string, string>) => {
        try {
          const replay = await measureReplay(walnut, {
            relayEnv,
            rows: drain.rows,
            drainRowsPerTx: drain.rowsPerTx,
            deadlineMs: values.full ? 600_000 : 120_000,
            log,
          });
          replays.push(replay);
        } catch (error) {
          // The report says so; the rest of the run still counts.
          log(`  replay failed: ${error instanceof Error ? error.message : String(error)}`);
          replays.push({
            drainRowsPerTx: drain.rowsPerTx,
            failed: error instanceof Error ? error.message : String(error),
          });
        }
      };
      const debeziumDrain = async (drain: DrainResult) => {
        try {
          debezium.push(
            await drainDebezium(walnut, {
              dir,
              brokers: stack.kafkaBrokers,
              slot: debeziumSlot,
              publication: PUBLICATION,
              endLsn: drain.endLsn,
              rows: drain.rows,
              rowsPerTx: drain.rowsPerTx,
              deadlineMs: values.full ? 600_000 : 300_000,
              log,
            }),
          );
        } catch (error) {
          // As the replay: the section says "failed: <reason>" and the run goes on.
          const failed = error instanceof Error ? error.message : String(error);
          log(`  Debezium failed: ${failed}`);
          debezium.push({ rowsPerTx: drain.rowsPerTx, failed });
        }
      };
      const afterDrain = async (drain: DrainResult, relayEnv: Record<string, string>) => {
        if (debeziumHere) await debeziumDrain(drain);
        if (replayHere) await replay(drain, relayEnv);
      };
      const opts = {
        profileDir,
        relayEnv: { RELAY_DELIVERY: delivery },
        label: delivery,
        ...(replayHere || debeziumHere ? { afterDrain } : {}),
        ...(debeziumHere ? { extraSlots: [debeziumSlot] } : {}),
      };
      const result = await drainWalnut(walnut, rows, rowsPerTx, PAYLOAD_BYTES, 600_000, opts);
      (delivery === 'exactly-once' ? exactlyOnceResults : walnutResults).push(result);
      if (profileDir) printProfile(profileDir, `relay CPU by function, ${delivery}, ${rowsPerTx}-row transactions`);
    }
  }

  const jarDir = await ensureKafkaJars();
  const sweep: SweepPoint[] = values['skip-sweep']
    ? []
    : await runSweep(walnut, {
        maxRows: sweepRows,
        // 64 MiB of payload per point in quick mode: 600 rows at 100 KB, 6,500 at 10 KB, all 20,000 at 1 KB.
        budgetBytes: (values.full ? 512 : 64) * 2 ** 20,
        deadlineMs: values.full ? 300_000 : 60_000,
        jarDir,
        log,
      });

  // Kafka's limit: its own producer, tuned (the figure the relay is held to) and with its defaults
  // (beside it, labelled), each on a fresh topic in this run.
  const producerRun = async (settings: ProducerSettings): Promise<ProducerPerfResult> => {
    log(`Kafka ProducerPerformance (${settings}), ${rows} records of ${PAYLOAD_BYTES} bytes, acks=all`);
    const topic = `bench.producer-perf-${settings}`;
    await createTopic(walnut.kafka, topic);
    const result = await kafkaProducerPerf({
      jarDir,
      brokers: stack.kafkaBrokers,
      topic,
      records: rows,
      recordBytes: PAYLOAD_BYTES,
      timeoutMs: 600_000,
      settings,
    });
    log(`  ${result.line}`);
    return result;
  };
  const kafka = await producerRun('tuned');
  const kafkaDefaults = await producerRun('defaults');

  // The same drains to the relay's other sinks, one server at a time, each with its own limit.
  const sinks: SinkRun[] = [];
  const otherSinks: Array<{ name: string; start: () => Promise<BenchSink> }> = withSinks
    ? [
        { name: 'Redis Streams', start: () => startRedisSink(dir, log) },
        { name: 'NATS JetStream', start: () => startNatsSink(dir, log) },
      ]
    : [];
  for (const { name, start } of otherSinks) {
    const started = performance.now();
    let sink: BenchSink;
    try {
      sink = await start();
    } catch (error) {
      // redis-server or nats-server not installed, say: the section says so and the run goes on.
      const failed = error instanceof Error ? error.message : String(error);
      log(`  ${name} did not start: ${failed}`);
      sinks.push({ name, server: 'did not start', about: '', durability: '', drains: [], limitRuns: [], failed });
      continue;
    }
    try {
      sinks.push(
        await drainToSink(walnut, sink, {
          rows,
          rowsPerTx: [1, 100, rows],
          deadlineMs: values.full ? 600_000 : 300_000,
          log,
        }),
      );
    } finally {
      await sink.stop();
    }
    log(`  ${sink.name}: ${((performance.now() - started) / 1000).toFixed(0)} s in all`);
  }

  const polling: PollingDrainResult[] = [];
  if (!values['skip-polling'])
    for (const rowsPerTx of [1, 100]) polling.push(await drainPolling(walnut, rows, rowsPerTx));

  let latency: LoadStep[] = [];
  let writes: WriteThroughput | undefined;
  if (!values['skip-latency'] || !values['skip-writes']) {
    // The whole of Walnut, as deployed: api, relay and applier processes.
    const relay = await walnut.startRelay();
    const applier = await walnut.startApplier();
    if (!values['skip-latency']) {
      const api = await walnut.startApi();
      const systems: SystemUnderLoad[] = [walnutSystem('Walnut', walnut, api.url, [relay, applier, api.process])];
      // Each other deployment on a Postgres server of its own (same build and settings), as
      // deployments are: on a shared server, a waiting relay's walsender decodes the loaded
      // database's WAL to skip it, and sends its relay keepalives as it goes.
      const servers: PostgresHandle[] = [];
      const ownServer = async (name: string) => {
        const server = await startPostgres({ dir: path.join(dir, name), log: (line) => log(`${name}: ${line}`) });
        servers.push(server);
        return server.url;
      };
      let pollingFixture: Awaited<ReturnType<typeof walnutFixture>> | undefined;
      let exactlyOnceFixture: Awaited<ReturnType<typeof walnutFixture>> | undefined;
      try {
        // The same schema, API and applier, with the polling relay in place of Walnut's.
        if (!values['skip-polling'])
          pollingFixture = await walnutFixture('bench_polling', {
            databaseUrl: await ownServer('pg-polling'),
            brokers: stack.kafkaBrokers,
          });
        // And Walnut again, its relay in exactly-once mode.
        if (!values['skip-exactly-once'])
          exactlyOnceFixture = await walnutFixture('bench_eo', {
            databaseUrl: await ownServer('pg-exactly-once'),
            brokers: stack.kafkaBrokers,
            env: { RELAY_DELIVERY: 'exactly-once' },
          });
        const deployment = pollingFixture && (await startPollingDeployment(pollingFixture));
        try {
          if (deployment) systems.push(deployment);
          if (exactlyOnceFixture) systems.push(await startWalnutDeployment('Walnut exactly-once', exactlyOnceFixture));
          latency = await runLoadSteps(systems, {
            fixedSeconds: latencySeconds,
            searchSeconds,
            maxSearchSteps,
            log,
          });
        } finally {
          await deployment?.stop();
        }
      } finally {
        // close() also stops the processes each fixture started; every server started is stopped,
        // also when a fixture failed to start.
        try {
          await pollingFixture?.close();
        } finally {
          try {
            await exactlyOnceFixture?.close();
          } finally {
            for (const server of servers) await server.stop().catch((error) => log(`postgres stop: ${error}`));
          }
        }
      }
      // Its idle event loop and pool would only add noise to the write run.
      await api.process.stop('SIGTERM');
    }
    if (!values['skip-writes']) {
      const profileDir = values.profile
        ? await mkdtemp(path.join(os.tmpdir(), 'walnut-profile-api-writes-'))
        : undefined;
      writes = await measureWrites(walnut, { clients: 32, seconds: writeSeconds, log, profileDir });
      if (profileDir) printProfile(profileDir, 'API CPU by function, POST /kv at 32 connections closed loop', 30);
    }
  }

  const chart = 'benchmarks-drain.svg';
  await writeFile(
    path.join(repoRoot, 'docs', chart),
    barChartSvg(
      `Drain of ${rows.toLocaleString('en-US')} 1 KB outbox rows (${mode} mode)`,
      'events/s',
      drainBars(walnutResults, polling, kafka, kafkaDefaults),
    ),
  );
  let sweepChart: string | undefined;
  if (sweep.length > 0) {
    sweepChart = 'benchmarks-scaling.svg';
    await writeFile(
      path.join(repoRoot, 'docs', sweepChart),
      barChartSvg(`Drain scaling: payload size and rows per transaction (${mode} mode)`, 'events/s', sweepBars(sweep)),
    );
  }
  let latencyChart: string | undefined;
  if (latency.length > 0) {
    latencyChart = 'benchmarks-latency.svg';
    await writeFile(
      path.join(repoRoot, 'docs', latencyChart),
      barChartSvg(
        `202 → readable in kvs: fixed loads and highest sustained (${mode} mode)`,
        'milliseconds',
        // Walnut against polling, as before; the exactly-once deployment has its own section's tables.
        latencyBars(latency.filter((s) => s.system !== 'Walnut exactly-once')),
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
    exactlyOnce: exactlyOnceResults,
    replays,
    debezium,
    withDebezium,
    polling,
    kafka,
    kafkaDefaults,
    sinks,
    withSinks,
    chart,
    sweep,
    sweepRows,
    sweepChart,
    recvlogicalOneRowSeconds,
    latency,
    latencySeconds,
    searchSeconds,
    maxSearchSteps,
    latencyChart,
    writes,
    footprint,
  });
  const reportFile = path.join(repoRoot, 'docs', 'benchmarks.md');
  const previous = await readFile(reportFile, 'utf8').catch(() => '');
  await writeFile(reportFile, withKeptPart(markdown, previous));
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

/** --profile: the relay's (or the API's) top frames by self time, and where the whole profile is. */
function printProfile(dir: string, title: string, count = 15): void {
  const file = mainThreadProfile(dir);
  if (!file) {
    log(`no CPU profile was written in ${dir}`);
    return;
  }
  log(`${title} (open ${file} in Chrome DevTools for the call tree):`);
  for (const { frame, selfMs, share } of topFrames(file, count, repoRoot)) {
    log(`  ${(share * 100).toFixed(1).padStart(5)}%  ${selfMs.toFixed(0).padStart(6)} ms  ${frame}`);
  }
}
