/** The report's replay section: `walnut-relay replay` beside the live relay's drain of the same rows. */
import type { DrainResult } from './drain.ts';
import type { ReplayOutcome } from './replay.ts';
import { cell, fmt, rate } from './report-format.ts';

export function replaySection(r: { walnut: DrainResult[]; replay: ReplayOutcome | undefined }): string[] {
  const out: string[] = ['## Replay', ''];
  if (!r.replay) return [...out, 'Not measured in this run.', ''];
  const live = r.walnut.find((w) => w.rowsPerTx === r.replay?.drainRowsPerTx);
  const txLabel = `${fmt(r.replay.drainRowsPerTx)}-row transactions`;
  if ('failed' in r.replay)
    return [...out, `The replay after the drain in ${txLabel} did not complete: ${cell(r.replay.failed)}`, ''];
  const p = r.replay;
  out.push(
    `Once the at-least-once drain in ${txLabel} of "Relay drain throughput" has relayed its ${fmt(p.rows)} rows and its relay has stopped, \`walnut-relay replay --all --to-topic <a fresh topic> --page-size ${p.pageSize}\` re-publishes the same rows from the same outbox, with the same mapping settings: ordinary SELECTs, ${fmt(p.pageSize)} rows a page, in one snapshot, each page acked by Kafka (acks=all) before its progress is saved. It runs as its own process through the relay's bin (its bundled build, as the drains' relay runs), with no relay running beside it. The benchmark times it from spawn to exit (node's start, its connections, its count of the rows, every page acked) and then checks that the fresh topic's high watermarks add up to ${fmt(p.rows)} (${fmt(p.topicRecords)} here). The command's own figure, from its \`replay.done\` line, leaves out its process start, its connections to Postgres and the count. The live relay's figure is timed from its "streaming" line, so its start-up (${live ? `${live.relayStartSeconds.toFixed(1)} s` : 'n/a'}) is left out.`,
    '',
    '| | rows | seconds | rows/s | / live relay |',
    '|---|---:|---:|---:|---:|',
  );
  const liveRate = live ? rate(live.rows, live.relaySeconds) : undefined;
  const ratio = (rowsPerSecond: number) => (liveRate === undefined ? 'n/a' : (rowsPerSecond / liveRate).toFixed(2));
  if (live)
    out.push(
      `| live relay, drain in ${txLabel} | ${fmt(live.rows)} | ${live.relaySeconds.toFixed(2)} | ${fmt(liveRate ?? Number.NaN)} | 1.00 |`,
    );
  out.push(
    `| replay, spawn to exit (the benchmark's clock) | ${fmt(p.rows)} | ${p.seconds.toFixed(2)} | ${fmt(p.rowsPerSecond)} | ${ratio(p.rowsPerSecond)} |`,
    `| replay, its own \`replay.done\` figure | ${fmt(p.command.rows)} | ${p.command.seconds.toFixed(2)} | ${fmt(p.command.rowsPerSecond)} | ${ratio(p.command.rowsPerSecond)} |`,
    '',
    'The two ran one after the other, not together: in use, a replay runs while the live relay streams on, sharing the cores, the database and Kafka with it. One page size only; one run, like every figure here.',
    '',
  );
  return out;
}
