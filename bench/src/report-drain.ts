/** The report's drain sections: relay drain, its scaling sweep, and the polling baseline's drain. */
import { sizeLabel } from './benchmark-charts.ts';
import type { DrainResult, PollingDrainResult } from './drain.ts';
import { DEFAULT_PRODUCER_PROPS, type ProducerPerfResult, TUNED_PRODUCER_PROPS } from './limits.ts';
import { POLL_BATCH, POLL_INTERVAL_MS } from './polling-relay.ts';
import { cell, fmt, rate } from './report-format.ts';
import { SWEEP_FIXED_ROWS_PER_TX, type SweepPoint } from './scaling-sweep.ts';
import { PAYLOAD_BYTES } from './workload.ts';

const cpuPer100k = (d: DrainResult) =>
  d.relayCpuSeconds === null ? 'n/a' : ((d.relayCpuSeconds / d.rows) * 100_000).toFixed(1);
const rssMiB = (d: DrainResult) =>
  d.relayPeakRssBytes === null ? 'n/a' : `${(d.relayPeakRssBytes / 2 ** 20).toFixed(0)} MiB`;

export function drainSection(r: {
  rows: number;
  walnut: DrainResult[];
  kafka: ProducerPerfResult;
  kafkaDefaults: ProducerPerfResult;
  recvlogicalOneRowSeconds: number;
  chart: string;
}): string[] {
  const out: string[] = ['## Relay drain throughput', ''];
  out.push(
    `${fmt(r.rows)} outbox rows with 1 KB payloads are committed while no relay runs (the slots are created first, so they see every row), then one consumer is started and timed until every row is out: in 1-row transactions, in 100-row transactions, and all in one transaction (which Postgres decodes to disk and sends at its commit, and which the relay may confirm only once Kafka has acked every row: its peak RSS shows whether its window holds). Walnut's relay (its bundled build, as the image runs it) is timed from its "streaming" log line until its own count of records Kafka acked (\`walnut_relay_events_total\`) reaches ${fmt(r.rows)}; its start-up is listed apart. \`pg_recvlogical\` drains an identical slot with the same publication to /dev/null up to the LSN after the writes: Postgres's decoding limit. Kafka's \`ProducerPerformance\` sends ${fmt(r.rows)} 1 KB records with acks=all and the best settings it accepts (\`${TUNED_PRODUCER_PROPS.join(' ')}\`): Kafka's produce limit on this machine. The same with the producer's defaults (\`${DEFAULT_PRODUCER_PROPS.join(' ')}\`, 16 KB batches, no linger) is shown beside it, labelled, and is not a limit: a relay that beats it has only beaten an untuned client.`,
    '',
    '| rows per transaction | Walnut relay (events/s) | relay start-up (s) | pg_recvlogical (events/s) | Kafka ProducerPerformance, tuned (records/s) | relay / min(limits) | ProducerPerformance, defaults (records/s) | relay peak RSS | relay CPU s per 100k events |',
    '|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  );
  for (const w of r.walnut) {
    const relay = rate(w.rows, w.relaySeconds);
    const decode = rate(w.rows, w.recvlogicalSeconds);
    out.push(
      `| ${fmt(w.rowsPerTx)} | ${fmt(relay)} (${w.relaySeconds.toFixed(2)} s) | ${w.relayStartSeconds.toFixed(1)} | ${fmt(decode)} (${w.recvlogicalSeconds.toFixed(2)} s) | ${fmt(r.kafka.recordsPerSecond)} | ${(relay / Math.min(decode, r.kafka.recordsPerSecond)).toFixed(2)} | ${fmt(r.kafkaDefaults.recordsPerSecond)} | ${rssMiB(w)} | ${cpuPer100k(w)} |`,
    );
  }
  out.push(
    '',
    `The pg_recvlogical times include its own start, connection and exit, and whatever it takes to stop at the end LSN: a run that decodes a single row took ${r.recvlogicalOneRowSeconds.toFixed(2)} s here, a fixed part of every pg_recvlogical time (a run on an empty slot would not show it, since it starts at its end and exits at once). The relay's time excludes its start-up (listed apart). ProducerPerformance's records/s is its own figure and includes its producer's warm-up, not the JVM's start; its records have no key and no headers, while the relay's carry a key and six headers.`,
    '',
    `ProducerPerformance's summaries: tuned \`${r.kafka.line}\`; defaults \`${r.kafkaDefaults.line}\``,
    '',
    'Time to write the rows (one session, `synchronous_commit=off`, a procedure that commits between transactions):',
    '',
    '| rows per transaction | rows | write time (s) | rows/s |',
    '|---:|---:|---:|---:|',
  );
  for (const w of r.walnut)
    out.push(
      `| ${fmt(w.rowsPerTx)} | ${fmt(w.rows)} | ${w.fillSeconds.toFixed(1)} | ${fmt(rate(w.rows, w.fillSeconds))} |`,
    );
  out.push('');
  return out;
}

export function sweepSection(r: {
  sweep: SweepPoint[];
  sweepRows: number;
  sweepChart: string | undefined;
  recvlogicalOneRowSeconds: number;
}): string[] {
  const out: string[] = ['## Relay drain scaling', ''];
  if (r.sweep.length === 0) return [...out, 'Not measured in this run.', ''];
  out.push(
    `The same drain, point by point: payload sizes of 100 B, 1 KB, 10 KB and 100 KB in ${SWEEP_FIXED_ROWS_PER_TX}-row transactions, then 1, 100 and 10,000 rows per transaction with 1 KB payloads (1 KB in ${SWEEP_FIXED_ROWS_PER_TX}-row transactions is one point of both, measured once). Each point has its own slots, created before its rows. A point has at most ${fmt(r.sweepRows)} rows and at most a fixed budget of payload bytes, so large payloads get fewer rows (the "rows" column), always in whole transactions; the 10,000-row point has at least one. Beside the relay: \`pg_recvlogical\` on an identical slot, and Kafka's \`ProducerPerformance\` sending the same number of records of the payload's size with acks=all and the tuned settings above. "relay / min(limits)" is the relay's events/s over the lower of the two.`,
    '',
  );
  const table = (title: string, points: SweepPoint[]) => {
    out.push(
      `${title}:`,
      '',
      '| payload | rows per transaction | rows | Walnut relay (events/s) | Walnut relay (MB/s of payload) | pg_recvlogical (events/s) | Kafka ProducerPerformance (records/s) | relay / min(limits) | relay peak RSS | relay CPU s per 100k events |',
      '|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    );
    for (const p of points) {
      const kafka = 'failed' in p.kafka ? undefined : p.kafka.recordsPerSecond;
      const kafkaCell = kafka === undefined ? `failed: ${cell('failed' in p.kafka ? p.kafka.failed : '')}` : fmt(kafka);
      const head = `| ${sizeLabel(p.payloadBytes)} | ${fmt(p.rowsPerTx)} | ${fmt(p.rows)}`;
      if ('failed' in p.drain) {
        out.push(`${head} | did not drain: ${cell(p.drain.failed)} | | | ${kafkaCell} | | | |`);
        continue;
      }
      const d = p.drain;
      const relay = rate(d.rows, d.relaySeconds);
      const decode = rate(d.rows, d.recvlogicalSeconds);
      const limit = Math.min(decode, kafka ?? Number.POSITIVE_INFINITY);
      out.push(
        `${head} | ${fmt(relay)} (${d.relaySeconds.toFixed(2)} s) | ${((relay * p.payloadBytes) / 1e6).toFixed(1)} | ${fmt(decode)} (${d.recvlogicalSeconds.toFixed(2)} s) | ${kafkaCell} | ${(relay / limit).toFixed(2)} | ${rssMiB(d)} | ${cpuPer100k(d)} |`,
      );
    }
    out.push('');
  };
  table(
    `By payload size, ${SWEEP_FIXED_ROWS_PER_TX} rows per transaction`,
    r.sweep.filter((p) => p.rowsPerTx === SWEEP_FIXED_ROWS_PER_TX),
  );
  table(
    'By rows per transaction, 1 KB payloads',
    r.sweep.filter((p) => p.payloadBytes === PAYLOAD_BYTES).sort((a, b) => a.rowsPerTx - b.rowsPerTx),
  );
  out.push(
    `Caveats: the payload is the \`payload\` column's JSON as Postgres prints it (a string of 'x' padded to the size); the relay's records also carry a key and six headers (about 150 bytes), which weigh most at 100 B, while ProducerPerformance's records are the payload size alone. Points with few rows are short runs, in which fixed costs weigh more: the producer's warm-up, and pg_recvlogical's fixed ${r.recvlogicalOneRowSeconds.toFixed(2)} s (see above), so at small row counts their rates understate the limits; a "relay / min(limits)" above 1 is that, not the relay beating a limit. The relay's in-flight window (\`RELAY_MAX_INFLIGHT_RECORDS\`, 20,000) counts records, not bytes, so its memory grows with the payload size; peak RSS shows what it reached at these row counts.`,
    '',
  );
  if (r.sweepChart) out.push(`![Drain scaling, events/s](${r.sweepChart})`, '');
  return out;
}

export function pollingDrainSection(r: {
  rows: number;
  walnut: DrainResult[];
  polling: PollingDrainResult[];
}): string[] {
  const out: string[] = ['## Polling baseline: drain', ''];
  out.push(
    `The outbox relay most projects ship, in \`bench/src/polling-relay.ts\`: one worker runs \`SELECT … WHERE sent_at IS NULL ORDER BY poll_seq LIMIT ${POLL_BATCH} FOR UPDATE SKIP LOCKED\`, publishes the batch with kafkajs (idempotent, acks=all; one request in flight, since a poll waits for its batch's ack), \`UPDATE … SET sent_at = now()\`, commits, and sleeps ${POLL_INTERVAL_MS} ms only when a poll finds nothing. Its outbox is a copy of Walnut's table plus a \`sent_at\` column, a \`poll_seq\` identity column (insert order) and a partial index on \`poll_seq\` of unsent rows. Same rows, same drain: timed from its connection until it has marked all ${fmt(r.rows)} rows sent (then checked against the topic's high watermarks). Here it runs inside the benchmark's process, which does nothing else meanwhile.`,
    '',
  );
  if (r.polling.length === 0) return [...out, 'Not measured in this run.', ''];
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
  return out;
}
