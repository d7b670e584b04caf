import { parseLsn } from '@walnut/schema';
import type { RecordPosition } from './kafka-record.ts';

/**
 * Exactly-once delivery's other half (the first is that each Kafka transaction
 * holds its records and a checkpoint naming the last of them). Pure.
 *
 * After a crash the slot replays from its confirmed LSN, which is never past
 * what Kafka committed but may be behind it: the relay confirms after the
 * commit, and a crash can fall in between. The checkpoint read back with
 * read_committed (after the new session's fence aborted whatever the old one
 * left open) names the last record Kafka holds, so every record at or before
 * it is dropped instead of sent again, including the first part of a Postgres
 * transaction larger than one Kafka transaction.
 *
 * Positions order as the stream does: by commit LSN (pgoutput sends whole
 * transactions in commit order; a non-transactional message sits at its own
 * LSN), then by index inside the transaction.
 */
export function comparePositions(a: RecordPosition, b: RecordPosition): number {
  const lsnA = parseLsn(a.commitLsn);
  const lsnB = parseLsn(b.commitLsn);
  if (lsnA !== lsnB) return lsnA < lsnB ? -1 : 1;
  return a.seq - b.seq;
}

/** Whether Kafka already holds the record at `position`, given the last committed checkpoint. */
export function alreadyDelivered(position: RecordPosition, checkpoint: RecordPosition | null): boolean {
  return checkpoint !== null && comparePositions(position, checkpoint) <= 0;
}
