import { formatLsn, type Lsn } from '@walnut/schema';
import type { RecordPosition } from '../kafka-record.ts';
import { commitTimeText } from '../outbox-mapping.ts';
import type { TxIdentity } from './checkpoint.ts';

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
  if (a.commitLsn !== b.commitLsn) return a.commitLsn < b.commitLsn ? -1 : 1;
  return a.seq - b.seq;
}

/** Whether Kafka already holds the record at `position`, given the last committed checkpoint. */
export function alreadyDelivered(position: RecordPosition, checkpoint: RecordPosition | null): boolean {
  return checkpoint !== null && comparePositions(position, checkpoint) <= 0;
}

/**
 * Which records of a resumed stream Kafka holds already, and whether the
 * stream is the history the checkpoint was written in.
 *
 * An LSN does not name a transaction: a server restored from a backup, or a
 * standby promoted before it had received the checkpointed commit, writes new
 * transactions at the LSNs the relay already relayed from. Once its WAL has
 * grown past the checkpoint, skipping by LSN alone would silently drop them.
 * So the checkpoint also holds the transaction's xid and commit time, and
 * positions at or before it count as delivered only once the stream has shown
 * that very transaction at that LSN. Until then they are skipped but the
 * session holds its confirmed LSN back (`verifying`), so if the stream reaches
 * another transaction at or past the checkpoint's LSN instead, nothing was
 * lost: the relay stops with CHECKPOINT_MISMATCH and the slot replays them.
 *
 * A slot that starts past the checkpoint never shows it (the server skips
 * what was confirmed) and needs no check; nor does a checkpoint written by an
 * older relay, without xid, which is trusted by LSN as before.
 */
export class DeliveredFilter {
  private through: RecordPosition | null;
  private verified: boolean;

  constructor(checkpoint: RecordPosition | null, startLsn: Lsn) {
    this.through = checkpoint && checkpoint.commitLsn >= startLsn ? checkpoint : null;
    this.verified = !checkpoint?.tx;
  }

  /** The checkpoint's position, while records may still be at or before it. */
  get checkpoint(): RecordPosition | null {
    return this.through;
  }

  /** Records are being skipped on the strength of a checkpoint the stream has not yet shown. */
  get verifying(): boolean {
    return this.through !== null && !this.verified;
  }

  /**
   * A transaction begins at `commitLsn` (or a non-transactional message, with
   * xid 0, sits there). Returns null, or why the stream is not the checkpoint's
   * history.
   */
  transaction(commitLsn: Lsn, tx: TxIdentity): string | null {
    const through = this.through;
    if (!through?.tx || this.verified) return null;
    if (commitLsn < through.commitLsn) return null;
    if (commitLsn === through.commitLsn && sameTransaction(tx, through.tx)) {
      this.verified = true;
      return null;
    }
    const what =
      tx.xid === 0 ? 'a non-transactional message' : `xid ${tx.xid} committed ${commitTimeText(tx.commitTimeMicros)}`;
    const named =
      through.tx.xid === 0
        ? 'a non-transactional message'
        : `xid ${through.tx.xid} committed ${commitTimeText(through.tx.commitTimeMicros)}`;
    return `at LSN ${formatLsn(commitLsn)} the stream has ${what}, where the checkpoint names ${named} at LSN ${formatLsn(through.commitLsn)}`;
  }

  /** Whether the record at `position` is in Kafka already (then it is skipped). */
  skip(position: RecordPosition): boolean {
    if (!this.through) return false;
    if (alreadyDelivered(position, this.through)) return true;
    // The stream is past the checkpoint for good: stop comparing.
    this.through = null;
    return false;
  }
}

function sameTransaction(a: TxIdentity, b: TxIdentity): boolean {
  // A non-transactional message has no commit time of its own: its LSN and kind name it.
  return a.xid === b.xid && (a.xid === 0 || a.commitTimeMicros === b.commitTimeMicros);
}
