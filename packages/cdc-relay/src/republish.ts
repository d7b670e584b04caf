import type { MessageToProduce } from '@platformatic/kafka';
import { RELAY_HEADERS } from '@walnut/schema';
import { RelayError } from './errors.ts';
import type { RelayProducer } from './kafka-producer.ts';
import { headerName, type KafkaRecord, topicProblem } from './kafka-record.ts';
import { type OutboxMapping, outboxRowMapper, type TxPosition } from './outbox-mapping.ts';
import type { OutboxPages } from './outbox-pages.ts';
import type { ProgressReport, ReplayState } from './replay-progress.ts';

/**
 * Pages read ahead of the last acked one. Sends go out in order on one
 * idempotent producer, so a page is acked only after the pages before it; a
 * crash re-sends at most this many pages on `--resume`.
 */
export const PAGES_IN_FLIGHT = 4;

export interface RepublishOptions {
  pages: OutboxPages;
  producer: RelayProducer;
  mapping: OutboxMapping;
  /** Every record to this topic instead of the mapping's. */
  toTopic: string | undefined;
  pageSize: number;
  maxBatchRecords: number;
  maxBatchBytes: number;
  maxRecordBytes: number;
  /** The relay headers of the row at this index of the whole run (resumed runs count on). */
  position: (index: number) => TxPosition;
  state: ReplayState;
  save: (state: ReplayState) => void;
  report: ProgressReport;
  stopping: () => boolean;
}

/**
 * Re-publishes the selected rows: reads a page, maps each row exactly as the
 * live relay maps an insert, sends, and advances the saved cursor only when
 * Kafka (acks=all) has acked that page and every page before it. Returns the
 * rows acked in all runs of this replay.
 */
export async function republish(opts: RepublishOptions): Promise<number> {
  const { state } = opts;
  const map = outboxRowMapper(opts.mapping, opts.pages.tableRelation);
  const inFlight: Array<{ sent: Promise<void>; cursor: string[]; rowsDone: number }> = [];
  let cursor = state.cursor;
  let index = state.rowsDone;

  const settleOldest = async () => {
    const page = inFlight.shift();
    if (!page) return;
    await page.sent;
    state.cursor = page.cursor;
    state.rowsDone = page.rowsDone;
    opts.save(state);
    opts.report.acked(state.rowsDone, state.cursor);
  };

  try {
    while (!opts.stopping()) {
      const page = await opts.pages.next(cursor, opts.pageSize);
      if (page.rows.length === 0) break;
      const records = page.rows.map((row, i) => {
        const record = map(row, opts.position(index + i));
        return opts.toTopic ? { ...record, topic: opts.toTopic } : record;
      });
      index += records.length;
      cursor = page.cursor;
      const sent = sendPage(opts, records);
      // Awaited in order below; a rejection before then is not unhandled.
      sent.catch(() => {});
      inFlight.push({ sent, cursor, rowsDone: index });
      while (inFlight.length >= PAGES_IN_FLIGHT) await settleOldest();
    }
    while (inFlight.length > 0) await settleOldest();
  } catch (error) {
    // What was acked before the failure stays saved; the rest is sent again on --resume.
    await Promise.allSettled(inFlight.map((p) => p.sent));
    throw error;
  }
  return state.rowsDone;
}

/** One page as produce requests no larger than the live relay's, all in flight at once. */
function sendPage(opts: RepublishOptions, records: KafkaRecord[]): Promise<void> {
  const requests: KafkaRecord[][] = [];
  let current: KafkaRecord[] = [];
  let bytes = 0;
  for (const record of records) {
    // As the live relay does (kafka-sink.ts), but a replay has no dead-letter topic: it stops, naming the row.
    const problem = record.unmappable ?? topicProblem(record.topic);
    if (problem !== undefined) {
      return Promise.reject(
        new RelayError('OUTBOX_ROW_UNMAPPABLE', `${record.source} cannot be re-published: ${problem}`, {
          retryable: false,
        }),
      );
    }
    if (record.sizeBytes > opts.maxRecordBytes) {
      return Promise.reject(
        new RelayError(
          'RECORD_TOO_LARGE',
          `${record.source} encodes to about ${record.sizeBytes} bytes, over RELAY_MAX_RECORD_BYTES (${opts.maxRecordBytes})`,
          { retryable: false },
        ),
      );
    }
    if (
      current.length > 0 &&
      (current.length >= opts.maxBatchRecords || bytes + record.sizeBytes > opts.maxBatchBytes)
    ) {
      requests.push(current);
      current = [];
      bytes = 0;
    }
    current.push(record);
    bytes += record.sizeBytes;
  }
  if (current.length > 0) requests.push(current);
  return Promise.all(
    requests.map((messages) => opts.producer.send({ messages: messages as unknown as MessageToProduce[] })),
  ).then(
    () => {},
    (cause) => {
      throw new RelayError('KAFKA_SEND_FAILED', `Kafka did not ack a replayed page: ${(cause as Error).message}`, {
        retryable: true,
        cause,
      });
    },
  );
}

/**
 * The relay headers of a re-published row: walnut-replay names the run,
 * walnut-commit-lsn is the position it stands at, and walnut-seq is the row's
 * place in the run (page order: creation order over Walnut's outbox), so that
 * among the run's own records of a key the later one wins a version guard.
 */
function republishedPosition(replayId: string, commitLsn: string): (index: number) => TxPosition {
  const encodedHeaders = [
    [headerName(RELAY_HEADERS.commitLsn), Buffer.from(commitLsn, 'latin1')],
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
  return republishedPosition(replayId, '0/0');
}

/**
 * A snapshot row. Every row the snapshot reads committed before the slot's
 * consistent point, and every streamed transaction commits at or after it, so
 * the rows stand one byte before it (`beforeLsn`): older than everything
 * streamed, ordered among themselves.
 */
export function snapshotPosition(replayId: string, beforeLsn: string): (index: number) => TxPosition {
  return republishedPosition(replayId, beforeLsn);
}
