import { formatLsn, type Lsn, RELAY_HEADERS } from '@walnut/schema';
import type { RelayError } from '../errors.ts';
import { headerName } from '../kafka-record.ts';
import { type OutboxMapping, outboxRowMapper, type TxPosition } from '../outbox-mapping.ts';
import type { OpenSink } from '../publish/sink.ts';
import { withTopic } from '../wire-record.ts';
import type { OutboxPages } from './outbox-pages.ts';
import type { ProgressReport, ReplayState } from './replay-progress.ts';

/**
 * Pages per sealed group: one Kafka transaction (publish/kafka-requests.ts).
 * Their reads and sends overlap; the cursor advances when the transaction
 * commits, so a crash re-sends at most this many pages on `--resume`, and
 * read_committed consumers never see them twice.
 */
export const PAGES_PER_TRANSACTION = 4;

/** Where the run stands once a page's last row, and every row before it, is acked. */
export interface PageEnd {
  cursor: string[];
  rowsDone: number;
}

export interface RepublishOptions {
  pages: OutboxPages;
  /**
   * The sink every publisher uses: the live stream's batcher, size rule and
   * dead-letter rule. Its fence is the replay's own, so a resumed run stops a
   * killed or frozen one (REPLAY_FENCED).
   */
  openSink: OpenSink<PageEnd | null>;
  mapping: OutboxMapping;
  /** Every record to this topic instead of the mapping's. */
  toTopic: string | undefined;
  pageSize: number;
  /** The relay headers of the row at this index of the whole run (resumed runs count on). */
  position: (index: number) => TxPosition;
  state: ReplayState;
  save: (state: ReplayState) => void;
  report: ProgressReport;
  stopping: () => boolean;
}

/**
 * Re-publishes the selected rows: reads a page, maps each row exactly as the
 * live relay maps an insert, and pushes it to the sink, sealing a group every
 * PAGES_PER_TRANSACTION pages; the saved cursor advances only when a page and
 * every page before it are acked. Returns the rows acked in all runs of this
 * replay. On a stop request the pages read so far are acked and saved first.
 */
export async function republish(opts: RepublishOptions): Promise<number> {
  const { state } = opts;
  const map = outboxRowMapper(opts.mapping, opts.pages.tableRelation);
  let failure: RelayError | null = null;
  let unsaved = false;
  const save = () => {
    if (!unsaved) return;
    unsaved = false;
    opts.save(state);
    opts.report.acked(state.rowsDone, state.cursor);
  };
  const sink = opts.openSink({
    acked: (end) => {
      if (!end) return;
      state.cursor = end.cursor;
      state.rowsDone = end.rowsDone;
      // The pages of one transaction are acked together: saved once.
      if (!unsaved) queueMicrotask(save);
      unsaved = true;
    },
    failed: (error) => {
      failure = error;
    },
  });
  try {
    await sink.start();
    let cursor = state.cursor;
    let index = state.rowsDone;
    let pages = 0;
    while (!opts.stopping()) {
      const page = await opts.pages.next(cursor, opts.pageSize);
      if (page.rows.length === 0) break;
      const end: PageEnd = { cursor: page.cursor, rowsDone: index + page.rows.length };
      for (const [i, row] of page.rows.entries()) {
        const mapped = map(row, opts.position(index + i));
        const record = opts.toTopic ? withTopic(mapped, opts.toTopic) : mapped;
        const wait = sink.push(record, i === page.rows.length - 1 ? end : null);
        if (wait) await wait;
      }
      index = end.rowsDone;
      cursor = page.cursor;
      if (++pages % PAGES_PER_TRANSACTION === 0) sink.seal();
    }
    await sink.drain();
    save();
    if (failure) throw failure;
    return state.rowsDone;
  } finally {
    sink.close();
  }
}

/**
 * The relay headers of a re-published row: walnut-replay names the run,
 * walnut-commit-lsn is the position it stands at, and walnut-seq is the row's
 * place in the run (page order: creation order over Walnut's outbox), so that
 * among the run's own records of a key the later one wins a version guard.
 */
function republishedPosition(replayId: string, commitLsn: Lsn): (index: number) => TxPosition {
  const encodedHeaders = [
    [headerName(RELAY_HEADERS.commitLsn), Buffer.from(formatLsn(commitLsn), 'latin1')],
    [headerName(RELAY_HEADERS.replay), Buffer.from(replayId, 'utf8')],
  ] as const;
  return (index) => ({ commitLsn, xid: 0, commitTimeMicros: 0n, seq: Math.min(index, 0xffffffff), encodedHeaders });
}

/**
 * A replayed row. Postgres keeps no commit LSN per row, so a replay cannot
 * know it: 0/0 (Postgres's invalid LSN) orders the record before every relayed
 * one, i.e. as a duplicate of an older version.
 */
export function replayPosition(replayId: string): (index: number) => TxPosition {
  return republishedPosition(replayId, 0n);
}

/**
 * A snapshot row. Every row the snapshot reads committed before the slot's
 * consistent point, and every streamed transaction commits at or after it, so
 * the rows stand one byte before it (`beforeLsn`): older than everything
 * streamed, ordered among themselves.
 */
export function snapshotPosition(replayId: string, beforeLsn: Lsn): (index: number) => TxPosition {
  return republishedPosition(replayId, beforeLsn);
}
