/** The report's replay section: `walnut-relay replay` beside the live relay's drain of the same rows. */
import type { DrainResult } from './drain.ts';
import type { ReplayOutcome, ReplayResult } from './replay.ts';
import { cell, fmt, rate } from './report-format.ts';

const columns = (c: readonly string[]) => `(${c.join(', ')})`;

export function replaySection(r: { rows: number; walnut: DrainResult[]; replays: ReplayOutcome[] }): string[] {
  const out: string[] = ['## Replay', ''];
  if (r.replays.length === 0) return [...out, 'Not measured in this run.', ''];
  const drainLabel = (rowsPerTx: number) =>
    rowsPerTx === r.rows && rowsPerTx > 100
      ? `one ${fmt(rowsPerTx)}-row transaction`
      : `${fmt(rowsPerTx)}-row transactions`;
  const done = r.replays.filter((p): p is ReplayResult => !('failed' in p));
  const pageSize = done[0]?.pageSize;
  out.push(
    `Once an at-least-once drain of "Relay drain throughput" has relayed its ${fmt(r.rows)} rows and its relay has stopped, \`walnut-relay replay --all --to-topic <a fresh topic>${pageSize ? ` --page-size ${pageSize}` : ''}\` re-publishes the same rows from the same outbox, with the same mapping settings: ordinary SELECTs${pageSize ? `, ${fmt(pageSize)} rows a page` : ''}, in one snapshot, 4 pages per Kafka transaction, committed before its progress is saved. This is done twice: after the drain in 100-row transactions, and after the drain of all rows in one transaction, whose rows all carry the same \`created_at\` (one \`now()\`). The replay runs as its own process through the relay's bin (its bundled build, as the drains' relay runs), with no relay running beside it. The benchmark times it from spawn to exit (node's start, its connections, its count of the rows, every page acked) and then checks that the fresh topic's high watermarks add up to at least the rows replayed (commit markers take offsets too). The command's own figure, from its \`replay.done\` line, leaves out its process start, its connections to Postgres and the count. The live relay's figure is timed from its "streaming" line, so its start-up (listed in "Relay drain throughput") is left out.`,
    '',
    '| drain replayed | rows | live relay rows/s (s) | replay rows/s, spawn to exit (s) | / live relay | replay rows/s, its own `replay.done` figure (s) | / live relay | pages in order of |',
    '|---|---:|---:|---:|---:|---:|---:|---|',
  );
  for (const p of r.replays) {
    const live = r.walnut.find((w) => w.rowsPerTx === p.drainRowsPerTx);
    const liveRate = live ? rate(live.rows, live.relaySeconds) : undefined;
    const liveCell = live ? `${fmt(liveRate ?? Number.NaN)} (${live.relaySeconds.toFixed(2)} s)` : 'n/a';
    const ratio = (rowsPerSecond: number) => (liveRate === undefined ? 'n/a' : (rowsPerSecond / liveRate).toFixed(2));
    if ('failed' in p) {
      out.push(
        `| ${drainLabel(p.drainRowsPerTx)} | ${live ? fmt(live.rows) : 'n/a'} | ${liveCell} | did not complete: ${cell(p.failed)} | | | | |`,
      );
      continue;
    }
    out.push(
      `| ${drainLabel(p.drainRowsPerTx)} | ${fmt(p.rows)} | ${liveCell} | ${fmt(p.rowsPerSecond)} (${p.seconds.toFixed(2)} s) | ${ratio(p.rowsPerSecond)} | ${fmt(p.command.rowsPerSecond)} (${p.command.seconds.toFixed(2)} s) | ${ratio(p.command.rowsPerSecond)} | ${columns(p.order)} |`,
    );
  }
  out.push('');
  const hundred = done.find((p) => p.drainRowsPerTx === 100);
  const single = done.find((p) => p.drainRowsPerTx === r.rows && p.drainRowsPerTx > 100);
  if (hundred && single) {
    const byCreation = (p: ReplayResult) => p.order.length === 2 && p.order[0] === 'created_at' && p.order[1] === 'id';
    const measured =
      byCreation(single) && byCreation(hundred)
        ? `Both replays here paged by (created_at, id), so the one-transaction replay measures that case over the new index: ${fmt(single.rows)} rows sharing one created_at, ${fmt(Math.ceil(single.rows / single.pageSize))} pages, each read from the (created_at, id) index from the previous page's last key on.`
        : byCreation(single)
          ? `The one-transaction replay paged by (created_at, id) and the 100-row one by ${columns(hundred.order)}: the two figures are of different orders.`
          : `The one-transaction replay paged by ${columns(single.order)}, not (created_at, id), so it does not measure that case.`;
    out.push(
      `After the one-transaction drain the replay ran at ${(single.command.rowsPerSecond / hundred.command.rowsPerSecond).toFixed(2)} × its rate after the 100-row drain by its own figure (${(single.rowsPerSecond / hundred.rowsPerSecond).toFixed(2)} × spawn to exit). Until 489a187, pages went by (created_at, id) over an index on created_at alone, and every page re-read and sorted the whole group of rows sharing one created_at: quadratic in the size of one transaction. Walnut's migrations now index the outbox on (created_at, id) (0006), and replay orders pages by creation time only over such an index, by id otherwise. ${measured}`,
      '',
    );
  }
  const indexes = done[0]?.outboxIndexes;
  if (indexes) {
    out.push(
      `The outbox here is Walnut's own, made by its migrations (\`walnutFixture\` runs them; the drains fill it with \`INSERT\`s, and the only tables the bench creates are the polling baseline's and a one-column flush table): its btree indexes were ${indexes.map(columns).join(', ')}. The last column of the table is the order the command chose, read from its progress file.`,
      '',
    );
    const indexed = indexes.some((c) => c[0] === 'created_at' && c[1] === 'id');
    const byId = done.filter((p) => p.order.length === 1 && p.order[0] === 'id');
    if (indexed && byId.length > 0)
      out.push(
        `**The outbox had the (created_at, id) index, yet ${byId.length === done.length ? 'every replay' : 'a replay'} here paged by id alone:** the command did not recognise the index. Id order never had the quadratic cost, so these figures show id-order pages only; pages in (created_at, id) order over the new index are not measured by this run.`,
        '',
      );
  }
  out.push(
    'Each replay ran after its drain, not together with it: in use, a replay runs while the live relay streams on, sharing the cores, the database and Kafka with it. One page size only; one run, like every figure here.',
    '',
  );
  return out;
}
