import type { MessageToProduce } from '@platformatic/kafka';
import { formatLsn, type Lsn, RELAY_HEADERS } from '@walnut/schema';
import { RelayError } from '../errors.ts';
import type { RelayProducer } from '../kafka-producer.ts';
import { headerName, type KafkaRecord, topicProblem } from '../kafka-record.ts';
import { type OutboxMapping, outboxRowMapper, type TxPosition } from '../outbox-mapping.ts';
import type { OutboxPages } from './outbox-pages.ts';
import type { ProgressReport, ReplayState } from './replay-progress.ts';

/**
 * Pages per Kafka transaction. Their reads and sends overlap; the cursor
 * advances when the transaction commits, so a crash re-sends at most this
 * many pages on `--resume`, and read_committed consumers never see them twice.
 */
export const PAGES_PER_TRANSACTION = 4;

export interface RepublishOptions {
  pages: OutboxPages;
  /** Transactional: its id is the replay's own, so a resumed run fences a killed or frozen one. */
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
 * live relay maps an insert, and sends it inside a Kafka transaction of up to
 * PAGES_PER_TRANSACTION pages; the saved cursor advances only when that
 * transaction has committed. Returns the rows acked in all runs of this replay.
 *
 * The first beginTransaction runs InitProducerId for the replay's
 * transactional id: the coordinator bumps its epoch and aborts whatever
 * transaction an earlier run of the same replay left open, and that run's
 * next send, AddPartitionsToTxn or commit is refused (fenced).
 */
export async function republish(opts: RepublishOptions): Promise<number> {
  const { state } = opts;
  const map = outboxRowMapper(opts.mapping, opts.pages.tableRelation);
  let cursor = state.cursor;
  let index = state.rowsDone;
  let exhausted = false;

  while (!exhausted && !opts.stopping()) {
    const transaction = await opts.producer.beginTransaction().catch((cause: unknown) => {
      throw sendFailure('could not begin a Kafka transaction', cause);
    });
    const sends: Array<Promise<void>> = [];
    let failed = false;
    try {
      // A failed send must end the transaction's sends at once: after a fence the library
      // forgets its producer id, and a later send would get a new one, outside any transaction.
      while (sends.length < PAGES_PER_TRANSACTION && !failed && !opts.stopping()) {
        const page = await opts.pages.next(cursor, opts.pageSize);
        if (page.rows.length === 0) {
          exhausted = true;
          break;
        }
        const records = page.rows.map((row, i) => {
          const record = map(row, opts.position(index + i));
          return opts.toTopic ? { ...record, topic: opts.toTopic } : record;
        });
        index += records.length;
        cursor = page.cursor;
        const sent = sendPage(opts, transaction, records);
        // Awaited below; a rejection before then is not unhandled.
        sent.catch(() => {
          failed = true;
        });
        sends.push(sent);
      }
      if (sends.length === 0) {
        // Nothing was added to it: dropped on the client, nothing to tell the coordinator.
        await transaction.cancel();
        break;
      }
      await Promise.all(sends);
      await transaction.commit().catch((cause: unknown) => {
        throw sendFailure('Kafka did not commit a replayed transaction', cause);
      });
    } catch (error) {
      // Left open: the next run's InitProducerId aborts it, so read_committed never sees it.
      // What was committed before stays saved; the rest is sent again on --resume.
      await Promise.allSettled(sends);
      throw error;
    }
    state.cursor = cursor;
    state.rowsDone = index;
    opts.save(state);
    opts.report.acked(state.rowsDone, state.cursor);
  }
  return state.rowsDone;
}

/** One page as produce requests no larger than the live relay's, all in flight at once. */
function sendPage(
  opts: RepublishOptions,
  transaction: Awaited<ReturnType<RelayProducer['beginTransaction']>>,
  records: KafkaRecord[],
): Promise<void> {
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
    requests.map((messages) => transaction.send({ messages: messages as unknown as MessageToProduce[] })),
  ).then(
    () => {},
    (cause) => {
      throw sendFailure('Kafka did not ack a replayed page', cause);
    },
  );
}

/**
 * Says when the failure is a fence: another run of this replay (a `--resume`)
 * took over its transactional id, and this one must stop without saving more.
 */
function sendFailure(what: string, cause: unknown): RelayError {
  const found = cause as { findBy?: (property: string, value: unknown) => unknown } | null;
  const fenced =
    !!found?.findBy?.('producerFenced', true) ||
    !!found?.findBy?.('apiId', 'PRODUCER_FENCED') ||
    !!found?.findBy?.('apiId', 'TRANSACTIONAL_ID_AUTHORIZATION_FAILED');
  if (fenced) {
    return new RelayError(
      'REPLAY_FENCED',
      `${what}: fenced, another run of this replay (--resume) took over its transactional id; this run stops, the other one goes on (${(cause as Error).message})`,
      { retryable: false, cause },
    );
  }
  return new RelayError('KAFKA_SEND_FAILED', `${what}: ${(cause as Error).message}`, { retryable: true, cause });
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
