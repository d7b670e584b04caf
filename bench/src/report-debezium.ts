/** The drain section's Debezium subsection: Debezium's outbox router on the relay's rows, beside the relay. */
import { DEBEZIUM_TUNING, DEBEZIUM_VERSION, OFFSET_FLUSH_INTERVAL_MS } from './debezium-connect.ts';
import type { DebeziumOutcome } from './debezium-drain.ts';
import type { DrainResult } from './drain.ts';
import { TUNED_PRODUCER_PROPS } from './limits.ts';
import { cell, fmt, rate } from './report-format.ts';

const per100k = (cpu: number | null, rows: number) => (cpu === null ? 'n/a' : ((cpu / rows) * 100_000).toFixed(1));
const mib = (bytes: number | null) => (bytes === null ? 'n/a' : `${(bytes / 2 ** 20).toFixed(0)} MiB`);

export function debeziumSection(r: {
  rows: number;
  walnut: DrainResult[];
  debezium: DebeziumOutcome[];
  withDebezium: boolean;
}): string[] {
  const out: string[] = ['### Debezium', ''];
  out.push(
    `Debezium ${DEBEZIUM_VERSION}'s Postgres connector with its outbox event router (\`io.debezium.transforms.outbox.EventRouter\`), on a Kafka Connect 4.1.1 worker in standalone mode (one task; the jars come from Maven Central through \`infra/debezium/pom.xml\`), drains the same rows as each at-least-once drain above, after the relay has stopped: its own pgoutput slot was created beside the relay's before the rows were written. It is tuned for throughput as Debezium's docs advise: \`${DEBEZIUM_TUNING.join(' ')}\`, \`snapshot.mode=no_data\` and \`publication.autocreate.mode=disabled\` (the slot and the publication exist), and Connect's producer gets the settings Kafka's limit is measured with (\`${TUNED_PRODUCER_PROPS.map((p) => `producer.${p}`).join(' ')}\`) and five requests in flight instead of Connect's one. The router routes by \`aggregatetype\` (as the relay's topic template does), keys by \`aggregateid\`, sends \`payload\` as the value through a StringConverter, and puts \`id\`, \`type\` and \`aggregatetype\` in headers. It is timed from Debezium's "Starting streaming" log line until the output topic's end offsets add up to ${fmt(r.rows)} (Connect's producer is not transactional, so they count records); the JVM's start-up is listed apart. CPU is the Connect JVM's (user + system, from /proc) over the same window, peak RSS its largest resident size sampled every 100 ms. Debezium confirms the slot only after Connect flushes its offsets (\`offset.flush.interval.ms=${OFFSET_FLUSH_INTERVAL_MS}\` here; Connect's default is 60,000): the last column is how long after the last record reached Kafka its slot's \`confirmed_flush_lsn\` made its last advance, and how far it then stayed from the WAL end of the writes (watched until it had not moved for ${(2 * OFFSET_FLUSH_INTERVAL_MS) / 1000 + 5} s). Debezium confirms only positions of events it was sent; the writes end with a commit outside the publication, which pgoutput does not send, so without a later write to a published table (Debezium's remedy: \`heartbeat.action.query\`) its slot stays short of the end, holding back the last transaction's WAL.`,
    '',
  );
  if (!r.withDebezium) return [...out, 'Not measured in this run (`pnpm bench --debezium`, or `--full`).', ''];
  out.push(
    '| rows per transaction | Walnut relay (events/s) | Debezium (events/s) | relay / Debezium | Debezium start-up (s) | relay CPU s per 100k events | Debezium CPU s per 100k events | relay peak RSS | Debezium peak RSS | Debezium slot: last confirm after the drain (s) |',
    '|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  );
  for (const d of r.debezium) {
    const w = r.walnut.find((x) => x.rowsPerTx === d.rowsPerTx);
    const relay = w ? rate(w.rows, w.relaySeconds) : undefined;
    const relayCells = w
      ? [fmt(relay ?? Number.NaN), per100k(w.relayCpuSeconds, w.rows), mib(w.relayPeakRssBytes)]
      : ['n/a', 'n/a', 'n/a'];
    if ('failed' in d) {
      out.push(
        `| ${fmt(d.rowsPerTx)} | ${relayCells[0]} | failed: ${cell(d.failed)} | | | ${relayCells[1]} | | ${relayCells[2]} | | |`,
      );
      continue;
    }
    const dbz = rate(d.rows, d.seconds);
    const c = d.confirm;
    const confirm =
      c.shortOfEndBytes === 0
        ? `${c.seconds.toFixed(2)} (end LSN)`
        : `${c.seconds.toFixed(2)}, then ${fmt(c.shortOfEndBytes)} B short of the end LSN`;
    out.push(
      `| ${fmt(d.rowsPerTx)} | ${relayCells[0]} | ${fmt(dbz)} (${d.seconds.toFixed(2)} s) | ${relay === undefined ? 'n/a' : (relay / dbz).toFixed(2)} | ${d.startSeconds.toFixed(1)} | ${relayCells[1]} | ${per100k(d.cpuSeconds, d.rows)} | ${relayCells[2]} | ${mib(d.peakRssBytes)} | ${confirm} |`,
    );
  }
  out.push('');
  return out;
}
