/** The report's section on the relay's other sinks: each sink's drains beside Kafka's, each held to its own limit. */
import type { DrainResult } from './drain.ts';
import type { ProducerPerfResult } from './limits.ts';
import { cell, fmt, rate } from './report-format.ts';
import { heldTo, type SinkLimit, type SinkRun } from './sinks.ts';

const micros = (d: DrainResult) =>
  d.relayCpuSeconds === null ? 'n/a' : ((d.relayCpuSeconds / d.rows) * 1e6).toFixed(1);
const mib = (d: DrainResult) =>
  d.relayPeakRssBytes === null ? 'n/a' : `${(d.relayPeakRssBytes / 2 ** 20).toFixed(0)} MiB`;

function row(sink: string, d: DrainResult, limit: SinkLimit | undefined): string {
  const relay = rate(d.rows, d.relaySeconds);
  const decode = rate(d.rows, d.recvlogicalSeconds);
  const limitCells = limit
    ? [fmt(limit.recordsPerSecond), (relay / limit.recordsPerSecond).toFixed(2)]
    : ['not measured', 'n/a'];
  const both = Math.min(decode, limit?.recordsPerSecond ?? Number.POSITIVE_INFINITY);
  return `| ${sink} | ${fmt(d.rowsPerTx)} | ${fmt(relay)} (${d.relaySeconds.toFixed(2)} s) | ${d.relayStartSeconds.toFixed(1)} | ${limitCells.join(' | ')} | ${fmt(decode)} | ${(relay / both).toFixed(2)} | ${mib(d)} | ${micros(d)} | ${d.relayRequests > 0 ? fmt(d.rows / d.relayRequests) : 'n/a'} |`;
}

export function sinksSection(r: {
  rows: number;
  walnut: DrainResult[];
  kafka: ProducerPerfResult;
  sinks: SinkRun[];
  withSinks: boolean;
}): string[] {
  const out: string[] = ['## Relay drain to other sinks', ''];
  out.push(
    `The at-least-once drains of "Relay drain throughput" (${fmt(r.rows)} rows of 1 KB in 1-row, 100-row and one transaction, each on slots of its own created before its rows, the relay timed from its "streaming" line until its count of records the sink acked reaches ${fmt(r.rows)}), with the relay pointed at another sink by \`RELAY_SINK\`, after the Kafka drains and ProducerPerformance runs. Each sink's limit is measured on the same server by the sink's own benchmark tool (for NATS, which has none here, a publish loop with the relay's client) with as many records of 1 KB, before its drains and again after them. Kafka's rows are those of "Relay drain throughput", beside them. "relay / limit" is the relay's events/s over the sink's limit; the column after pg_recvlogical (each drain's own run) is over the lower of the two. "rows per request" is the drain's rows over the requests the relay sent (\`walnut_relay_produce_requests_total\`): Kafka produce requests, Redis MULTI/EXEC pipelines, NATS publishes (one per row).`,
    '',
  );
  if (!r.withSinks) return [...out, 'Left out of this run (`--skip-sinks`).', ''];
  out.push(
    '| sink | rows per transaction | Walnut relay (events/s) | relay start-up (s) | sink limit (records/s) | relay / limit | pg_recvlogical (events/s) | relay / min(pg_recvlogical, limit) | relay peak RSS | relay CPU µs per event | rows per request |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  );
  const kafkaLimit = {
    tool: 'ProducerPerformance, tuned',
    recordsPerSecond: r.kafka.recordsPerSecond,
    line: r.kafka.line,
  };
  for (const d of r.walnut) out.push(row('Kafka (acks=all, one broker)', d, kafkaLimit));
  for (const s of r.sinks) {
    const limit = heldTo(s);
    const sink = s.durability ? `${s.name} (${s.durability})` : s.name;
    for (const d of s.drains) out.push(row(sink, d, limit));
    if (s.failed) out.push(`| ${s.name} | | did not drain: ${cell(s.failed)} | | | | | | | | |`);
  }
  out.push('');
  for (const s of r.sinks) {
    out.push(`${s.name}: ${s.server}.${s.about ? ` ${s.about}` : ''}`, '');
    if (s.limitRuns.length === 0) continue;
    const limit = heldTo(s);
    out.push(
      `Its limit, run ${s.limitRuns.length === 2 ? 'before the drains and again after them' : 'as listed'} (the higher of the first figures is the one the table holds the relay to${limit ? `: ${fmt(limit.recordsPerSecond)} records/s` : ''}; the machine is shared, and a sink bound by its disk's fsync latency swings with the disk's other users):`,
      '',
    );
    for (const run of s.limitRuns) {
      if ('failed' in run) {
        out.push(`- ${run.when}: failed: ${cell(run.failed)}`);
        continue;
      }
      run.limits.forEach((l, i) => {
        out.push(`- ${run.when}, ${i === 0 ? 'the limit' : 'beside it, not a limit'}: \`${l.tool}\`: ${l.line}`);
      });
    }
    out.push('');
  }
  return out;
}
