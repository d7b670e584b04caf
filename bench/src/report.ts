/** docs/benchmarks.md: the machine, each section with how it was measured, and what is not measured. */
import type { DebeziumOutcome } from './debezium-drain.ts';
import type { DrainResult, PollingDrainResult } from './drain.ts';
import type { Footprint } from './footprint.ts';
import type { ProducerPerfResult } from './limits.ts';
import type { LoadStep } from './load-steps.ts';
import type { ReplayOutcome } from './replay.ts';
import { debeziumSection } from './report-debezium.ts';
import { deliverySection } from './report-delivery.ts';
import { drainSection, pollingDrainSection, sweepSection } from './report-drain.ts';
import { latencySection, writesSection } from './report-load.ts';
import { replaySection } from './report-replay.ts';
import { sinksSection } from './report-sinks.ts';
import { targetsSection } from './report-targets.ts';
import type { SweepPoint } from './scaling-sweep.ts';
import type { SinkRun } from './sinks.ts';
import type { WriteThroughput } from './write-throughput.ts';

export interface Environment {
  date: string;
  mode: 'quick' | 'full';
  cores: number;
  cpuModel: string;
  memoryBytes: number;
  node: string;
  postgres: string;
  kafka: string;
  kafkajs: string;
  commit: string;
  /** os.loadavg()[0] when the run started and ended: the machine is shared. */
  loadStart: number;
  loadEnd: number;
}

export interface Results {
  env: Environment;
  rows: number;
  walnut: DrainResult[];
  /** The same drains with RELAY_DELIVERY=exactly-once; empty when left out. */
  exactlyOnce: DrainResult[];
  /** `walnut-relay replay` of at-least-once drains' rows (100-row and one-transaction); empty when left out. */
  replays: ReplayOutcome[];
  /** Debezium's drains of the at-least-once drains' rows; empty when left out or failed before any. */
  debezium: DebeziumOutcome[];
  /** Whether Debezium was asked for (--debezium or --full). */
  withDebezium: boolean;
  polling: PollingDrainResult[];
  /** Kafka's produce limit: ProducerPerformance with TUNED_PRODUCER_PROPS. */
  kafka: ProducerPerfResult;
  /** The same with the producer's defaults (acks=all): shown beside, not a limit. */
  kafkaDefaults: ProducerPerfResult;
  /** The relay's drains to its other sinks (Redis Streams, NATS JetStream), each with its limit; empty when left out. */
  sinks: SinkRun[];
  /** Whether they were asked for (--sinks or --full). */
  withSinks: boolean;
  chart: string;
  sweep: SweepPoint[];
  sweepRows: number;
  sweepChart: string | undefined;
  /** pg_recvlogical's whole run for a single row: the fixed part of each of its times. */
  recvlogicalOneRowSeconds: number;
  /** Every system's steps: Walnut, polling and, unless left out, Walnut exactly-once. */
  latency: LoadStep[];
  latencySeconds: number;
  searchSeconds: number;
  maxSearchSteps: number;
  latencyChart: string | undefined;
  writes: WriteThroughput | undefined;
  footprint: Footprint | undefined;
}

/** What the benchmark does not tell, so nobody reads it into the figures. */
const NOT_MEASURED = [
  'More than one process of anything: one API, one relay, one applier, one polling worker. Nothing is measured across machines either: every connection is loopback, without TLS or SASL.',
  'Kafka durability as deployed: one broker, so acks=all waits for one replica, not three.',
  'Relay memory and CPU as curves over time: the drains show peak RSS and CPU seconds per 100k events over a whole drain (CPU per 100k events is scaled from the drain, not a separate run).',
  'Reads under load (`GET /kv/:key`, `?after=`, listing) and `POST /kv/batch`: the load is single-key writes only.',
  "Long runs: hours of load, slot lag and WAL retention over time, the applier's outbox retention sweep under load.",
  'Variance: every figure is one run on one shared machine; nothing is repeated or averaged.',
];

function footprintSection(f: Footprint | undefined): string[] {
  if (!f) return [];
  return [
    '## The relay as a sidecar',
    '',
    `The relay started as its image starts it (its bin, running the bundled build \`packages/cdc-relay/dist/main.js\` with plain node, one process), next to a database where nothing is written: ${f.startToStreamingSeconds.toFixed(2)} s from spawn to its "streaming" log line (connecting to Postgres and Kafka, creating its slot, fencing older producers), then over ${f.idleSeconds.toFixed(0)} s idle ${(f.idleCpuShareOfCore * 100).toFixed(2)}% of one core and ${(f.idleRssBytes / 2 ** 20).toFixed(0)} MiB resident.`,
    '',
    `Each start had a new slot of its own. The figure above is the second relay started on this Kafka cluster; the first, just before it, took ${f.firstStartToStreamingSeconds.toFixed(2)} s, because the first producer to fence a transactional id on a new cluster waits while the broker creates its transaction log (\`__transaction_state\`, 50 partitions): once per cluster, not per relay.`,
    '',
  ];
}

export function renderMarkdown(r: Results): string {
  const { env } = r;
  const out: string[] = ['# Benchmarks', ''];
  out.push(
    `Written by \`pnpm bench${env.mode === 'full' ? ' --full' : ''}\` (${env.mode} mode); every figure below was measured in that run, on a private Postgres, Kafka, redis-server and nats-server the benchmark started for itself. Timings are not pass/fail: they describe one machine on one day, and this machine is shared with other work.`,
    '',
    "Reproduce with `pnpm bench` (quick: 50,000 rows per drain, at most 20,000 rows and 64 MiB of payload per scaling point, 10 s per fixed load and 8 s per search step, 10 s write runs; a few minutes) or `pnpm bench --full` (200,000 rows; 100,000 rows and 512 MiB per scaling point; 60 s per fixed load, 20 s per search step; 30 s write runs). For short checks of the benchmark itself: `--rows N` (drain size), `--sweep-rows N` (most rows per scaling point), `--latency-seconds N` (each fixed load; search steps are at most this long), `--search-steps N` (0 skips the search), `--write-seconds N`; `--skip-polling`, `--skip-sweep`, `--skip-latency`, `--skip-writes`, `--skip-exactly-once`, `--skip-replay`, `--skip-sinks` leave sections out; `--debezium` adds a Debezium drain of the same rows (always in `--full`; its jars are fetched from Maven Central on first use). Beside the Kafka drains, the relay drains the same rows to Redis Streams on a private redis-server, held to `redis-benchmark`'s XADD rate, and to NATS JetStream on a private nats-server, held to a JetStream publish loop with the relay's client (`--skip-sinks` leaves both out). The code is in `bench/src`.",
    '',
    '| | |',
    '|---|---|',
    `| date | ${env.date} |`,
    `| code | ${env.commit} |`,
    `| CPU | ${env.cores} cores (${env.cpuModel}) |`,
    `| memory | ${(env.memoryBytes / 2 ** 30).toFixed(1)} GiB |`,
    `| Node | ${env.node} |`,
    `| Postgres | ${env.postgres} |`,
    `| Kafka | ${env.kafka} (one KRaft broker, 3 partitions per topic) |`,
    `| Kafka clients | relay: @platformatic/kafka 1.35.0 (patched, see patches/); applier and readers: kafkajs ${env.kafkajs} |`,
    `| 1-minute load average | ${env.loadStart.toFixed(2)} at start, ${env.loadEnd.toFixed(2)} at end (other work shares the machine) |`,
    '',
  );
  out.push(...targetsSection(r));
  out.push(...footprintSection(r.footprint));
  out.push(...drainSection(r));
  out.push(...debeziumSection(r));
  out.push(...sinksSection(r));
  out.push(...sweepSection(r));
  out.push(...pollingDrainSection(r));
  out.push(`![Drain throughput, events/s](${r.chart})`, '');
  out.push(...replaySection(r));
  // Walnut against polling, as before the exactly-once deployment joined the steps; it has its own section.
  out.push(
    ...latencySection({
      ...r,
      latency: r.latency.filter((l) => l.system !== 'Walnut exactly-once'),
      alongside: r.latency.some((l) => l.system === 'Walnut exactly-once'),
    }),
  );
  out.push(...deliverySection(r));
  out.push(...writesSection(r.writes));
  out.push('## Not measured', '');
  for (const n of NOT_MEASURED) out.push(`- ${n}`);
  out.push('');
  return out.join('\n');
}
