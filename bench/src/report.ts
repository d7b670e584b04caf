import type { DrainResult, PollingDrainResult } from './drain.ts';
import { type LatencyResult, WATCH_INTERVAL_MS } from './latency.ts';
import type { ProducerPerfResult } from './limits.ts';
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

export type SweepPoint = DrainResult | { rowsPerTx: number; payloadBytes: number; failed: string };

export interface Results {
  env: Environment;
  rows: number;
  walnut: DrainResult[];
  polling: PollingDrainResult[];
  kafka: ProducerPerfResult | undefined;
  kafkaRecords: number;
  chart: string | undefined;
  sweep: SweepPoint[];
  recvlogicalEmptySeconds: number;
  sweepRows: number;
  latency: LatencyResult[];
  latencySeconds: number;
  latencyChart: string | undefined;
  writes: WriteThroughput | undefined;
  notes: string[];
}

const rate = (rows: number, seconds: number) => rows / seconds;
const fmt = (n: number) => Math.round(n).toLocaleString('en-US');

export function renderMarkdown(r: Results): string {
  const { env } = r;
  const out: string[] = [];
  out.push('# Benchmarks', '');
  out.push(
    `Written by \`pnpm bench${env.mode === 'full' ? ' --full' : ''}\` (${env.mode} mode); every figure below was measured in that run, on a private Postgres and Kafka the benchmark started for itself. Timings are not pass/fail: they describe one machine on one day, and this machine is shared with other work.`,
    '',
    'Reproduce with `pnpm bench` (quick: 50,000 rows per drain, 20,000 per scaling point, 10 s per load step, a few minutes) or `pnpm bench --full` (200,000 / 100,000 rows, 60 s per latency step, 30 s write runs). `--rows N` changes the drain size; `--skip-polling`, `--skip-sweep`, `--skip-latency`, `--skip-writes` leave sections out. The code is in `bench/src`.',
    '',
  );
  out.push('| | |', '|---|---|');
  out.push(`| date | ${env.date} |`);
  out.push(`| code | ${env.commit} |`);
  out.push(`| CPU | ${env.cores} cores (${env.cpuModel}) |`);
  out.push(`| memory | ${(env.memoryBytes / 2 ** 30).toFixed(1)} GiB |`);
  out.push(`| Node | ${env.node} |`);
  out.push(`| Postgres | ${env.postgres} |`);
  out.push(`| Kafka | ${env.kafka} (one KRaft broker, 3 partitions per topic) |`);
  out.push(`| kafkajs | ${env.kafkajs} |`);
  out.push(
    `| 1-minute load average | ${env.loadStart.toFixed(2)} at start, ${env.loadEnd.toFixed(2)} at end (other work shares the machine) |`,
  );
  out.push('');

  out.push('## Relay drain throughput', '');
  out.push(
    `${fmt(r.rows)} outbox rows with 1 KB payloads are committed while no relay runs (the slots are created first, so they see every row), then one consumer is started and timed until every row is out. Walnut's relay is timed from its "streaming" log line until the topic's high watermarks sum to ${fmt(r.rows)} (Kafka acked them all); its start-up is listed apart. \`pg_recvlogical\` drains an identical slot with the same publication to /dev/null up to the LSN after the writes: Postgres's decoding limit. Kafka's \`ProducerPerformance\` sends ${fmt(r.kafkaRecords)} 1 KB records with acks=all: Kafka's produce limit on this machine.`,
    '',
  );
  out.push(
    '| rows per transaction | Walnut relay (events/s) | relay start-up (s) | pg_recvlogical (events/s) | Kafka ProducerPerformance (records/s) | relay / min(limits) | relay peak RSS | relay CPU s per 100k events |',
    '|---:|---:|---:|---:|---:|---:|---:|---:|',
  );
  for (const w of r.walnut) {
    const relay = rate(w.rows, w.relaySeconds);
    const decode = rate(w.rows, w.recvlogicalSeconds);
    const limit = r.kafka ? Math.min(decode, r.kafka.recordsPerSecond) : decode;
    const rss = w.relayPeakRssBytes === null ? 'n/a' : `${(w.relayPeakRssBytes / 2 ** 20).toFixed(0)} MiB`;
    const cpu = w.relayCpuSeconds === null ? 'n/a' : ((w.relayCpuSeconds / w.rows) * 100_000).toFixed(1);
    out.push(
      `| ${w.rowsPerTx} | ${fmt(relay)} (${w.relaySeconds.toFixed(2)} s) | ${w.relayStartSeconds.toFixed(1)} | ${fmt(decode)} (${w.recvlogicalSeconds.toFixed(2)} s) | ${r.kafka ? fmt(r.kafka.recordsPerSecond) : 'not measured'} | ${(relay / limit).toFixed(2)} | ${rss} | ${cpu} |`,
    );
  }
  out.push('');
  out.push(
    `The pg_recvlogical times include its own start, connection and exit; run against an empty slot, that alone took ${r.recvlogicalEmptySeconds.toFixed(2)} s in this run. The relay's time excludes its start-up (listed apart). ProducerPerformance's records/s is its own figure and includes its producer's warm-up, not the JVM's start.`,
    '',
  );
  if (r.kafka) out.push(`ProducerPerformance's summary: \`${r.kafka.line}\``, '');
  out.push(
    'Time to write the rows (one session, `synchronous_commit=off`, a procedure that commits between transactions):',
    '',
  );
  out.push('| rows per transaction | rows | write time (s) | rows/s |', '|---:|---:|---:|---:|');
  for (const w of r.walnut)
    out.push(`| ${w.rowsPerTx} | ${fmt(w.rows)} | ${w.fillSeconds.toFixed(1)} | ${fmt(rate(w.rows, w.fillSeconds))} |`);
  out.push('');

  out.push('## Relay drain scaling', '');
  if (r.sweep.length === 0) out.push('Not measured in this run.', '');
  else {
    out.push(
      `The same drain with ${fmt(r.sweepRows)} rows per point: payload size at 100-row transactions, then rows per transaction at 1 KB. Each point has its own slots, created before its rows.`,
      '',
      '| payload (bytes) | rows per transaction | Walnut relay (events/s) | Walnut relay (MB/s of payload) | pg_recvlogical (events/s) | relay / pg_recvlogical | relay CPU s per 100k events |',
      '|---:|---:|---:|---:|---:|---:|---:|',
    );
    for (const w of r.sweep) {
      if ('failed' in w) {
        out.push(
          `| ${fmt(w.payloadBytes)} | ${w.rowsPerTx} | did not drain: ${w.failed.replaceAll('|', '/')} | | | | |`,
        );
        continue;
      }
      const relay = rate(w.rows, w.relaySeconds);
      const decode = rate(w.rows, w.recvlogicalSeconds);
      const cpu = w.relayCpuSeconds === null ? 'n/a' : ((w.relayCpuSeconds / w.rows) * 100_000).toFixed(1);
      out.push(
        `| ${fmt(w.payloadBytes)} | ${w.rowsPerTx} | ${fmt(relay)} | ${((relay * w.payloadBytes) / 1e6).toFixed(1)} | ${fmt(decode)} | ${(relay / decode).toFixed(2)} | ${cpu} |`,
      );
    }
    out.push('');
  }

  out.push('## Polling baseline', '');
  out.push(
    `The outbox relay most projects ship, in \`bench/src/polling-relay.ts\`: one worker runs \`SELECT … WHERE sent_at IS NULL ORDER BY created_at LIMIT 100 FOR UPDATE SKIP LOCKED\`, publishes the batch with kafkajs (idempotent, acks=all, as Walnut's relay), \`UPDATE … SET sent_at = now()\`, commits, and sleeps 100 ms when a poll finds nothing. It reads its own copy of the outbox table with a \`sent_at\` column and a partial index on unsent rows. Same rows, same drain: timed from its start until it has marked all ${fmt(r.rows)} rows sent (then checked against the topic's high watermarks).`,
    '',
  );
  if (r.polling.length === 0) out.push('Not measured in this run.', '');
  else {
    out.push(
      '| rows per transaction | polling relay (events/s) | Walnut relay (events/s) | Walnut / polling |',
      '|---:|---:|---:|---:|',
    );
    for (const p of r.polling) {
      const w = r.walnut.find((x) => x.rowsPerTx === p.rowsPerTx);
      const poll = rate(p.rows, p.seconds);
      const walnut = w ? rate(w.rows, w.relaySeconds) : undefined;
      out.push(
        `| ${p.rowsPerTx} | ${fmt(poll)} (${p.seconds.toFixed(2)} s) | ${walnut === undefined ? 'n/a' : fmt(walnut)} | ${walnut === undefined ? 'n/a' : (walnut / poll).toFixed(2)} |`,
      );
    }
    out.push('');
  }
  if (r.chart) out.push(`![Drain throughput, events/s](${r.chart})`, '');
  out.push('## End-to-end latency', '');
  if (r.latency.length === 0) out.push('Not measured in this run.', '');
  else {
    out.push(
      `Walnut as deployed (api, relay and applier processes, one each) on the same machine as the load generator. For ${r.latencySeconds} s per row, writes are offered at a fixed rate, open loop (sent on schedule, at most 512 in flight; beyond that a write is shed and counted), each to its own key. Latency is from the API's 202 to the key being readable in \`kvs\`, seen by one watcher that queries \`kvs\` for the pending keys every ${WATCH_INTERVAL_MS} ms (so each figure can be late by that plus one query). A 3 s warm-up at 100 writes/s precedes the measured runs and is not counted.`,
      '',
    );
    out.push(
      '| offered writes/s | accepted writes/s | 202 → kvs p50 (ms) | p95 | p99 | max | request → 202 p50 (ms) | p99 | sent | applied | not applied in 30 s | failed | shed |',
      '|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    );
    const ms = (n: number) => (Number.isNaN(n) ? 'n/a' : n.toFixed(1));
    for (const l of r.latency) {
      out.push(
        `| ${fmt(l.offeredPerSecond)} | ${fmt(l.acceptedPerSecond)} | ${ms(l.apply.p50)} | ${ms(l.apply.p95)} | ${ms(l.apply.p99)} | ${ms(l.apply.max)} | ${ms(l.http.p50)} | ${ms(l.http.p99)} | ${fmt(l.sent)} | ${fmt(l.applied)} | ${fmt(l.notApplied)} | ${fmt(l.failed)} | ${fmt(l.shed)} |`,
      );
    }
    out.push(
      '',
      '"accepted writes/s" is 202s over the time from the first request to the last 202. Where it is below the offered rate, or "request → 202" is long, the API (or the machine) did not keep up with the offered load and the writes queued before their 202; the 202 → kvs figures then describe a saturated API, not the offered rate.',
      '',
    );
    if (r.latencyChart) out.push(`![End-to-end latency, ms](${r.latencyChart})`, '');
  }
  out.push('## API write throughput against pgbench', '');
  if (!r.writes) out.push('Not measured in this run.', '');
  else {
    const w = r.writes;
    out.push(
      `With the relay and applier running (so downstream work is the same for both), ${w.clients} clients post single-key writes to the API back to back for ${w.seconds} s (closed loop, each to a new key); then \`pgbench -c ${w.clients} -j 2 -T ${w.seconds}\` runs the transaction the API commits (one outbox row with a valid kv event and one \`requests\` row) against the same database. Both commit with the server's defaults (the harness keeps fsync on; neither changes synchronous_commit). The API's HTTP client is the benchmark's own Node process (fetch), on the same cores as everything else.`,
      '',
      '| | writes/s |',
      '|---|---:|',
      `| API (POST /kv → 202), ${w.clients} clients | ${fmt(w.apiWritesPerSecond)} (${fmt(w.apiFailed)} failed) |`,
      `| pgbench, same transaction, ${w.clients} connections | ${fmt(w.pgbenchTps)} |`,
      `| API / pgbench | ${(w.apiWritesPerSecond / w.pgbenchTps).toFixed(2)} |`,
      '',
      `pgbench's summary: \`${w.pgbenchLine}\``,
      '',
    );
  }
  out.push('## Not measured yet', '');
  for (const n of r.notes) out.push(`- ${n}`);
  out.push('');
  return out.join('\n');
}
