import { formatLsn, type Lsn } from '@walnut/schema';
import type { Logger } from 'pino';
import { RelayError } from '../errors.ts';
import type { RecordPosition } from '../kafka-record.ts';
import type { TxPosition } from '../outbox-mapping.ts';
import type { TxIdentity } from './checkpoint.ts';
import { DeliveredFilter } from './checkpoint-skip.ts';

/** A non-transactional message's stand-in identity: no xid, no commit time (see checkpoint.ts). */
const NON_TRANSACTIONAL: TxIdentity = { xid: 0, commitTimeMicros: 0n };

/**
 * Exactly-once, for one session: which records of the resumed stream Kafka
 * holds already (they are skipped), and whether the stream is the history the
 * checkpoint was written in (else the relay stops with CHECKPOINT_MISMATCH).
 * The rules are checkpoint-skip.ts's; this applies them to the stream.
 */
export class ResumedStream {
  private readonly delivered: DeliveredFilter;
  private skipped = 0;

  /** checkpoint: the last record Kafka holds, read once the session has fenced the last. */
  constructor(
    checkpoint: RecordPosition | null,
    startLsn: Lsn,
    private readonly log: Logger,
  ) {
    this.delivered = new DeliveredFilter(checkpoint, startLsn);
    const through = this.delivered.checkpoint;
    if (through) {
      log.info(
        { through: { commitLsn: formatLsn(through.commitLsn), seq: through.seq, xid: through.tx?.xid } },
        'exactly-once: skipping what Kafka already holds',
      );
    }
  }

  /** Skipped on a checkpoint the stream has not shown yet: if it never does, the slot must replay them. */
  get verifying(): boolean {
    return this.delivered.verifying;
  }

  /**
   * A transaction begins: returns its identity, which each of its records'
   * checkpoints carries, once the stream is known not to contradict the checkpoint.
   */
  begin(commitLsn: Lsn, tx: TxIdentity): TxIdentity {
    this.checkHistory(commitLsn, tx);
    return tx;
  }

  /** Whether the event at the transaction's next index is in Kafka already; if so it is counted as passed. */
  skip(tx: TxPosition): boolean {
    if (!this.delivered.checkpoint) return false;
    if (!this.delivered.skip(tx)) {
      if (this.skipped > 0) this.log.info({ skipped: this.skipped }, 'exactly-once: caught up with Kafka');
      return false;
    }
    tx.seq++;
    this.skipped++;
    return true;
  }

  /** A non-transactional message, its own unit at `position`: marks it so, and says whether Kafka has it. */
  skipMessage(position: RecordPosition): boolean {
    position.tx = NON_TRANSACTIONAL;
    this.checkHistory(position.commitLsn, NON_TRANSACTIONAL);
    return this.delivered.skip(position);
  }

  /** Stops the relay when the stream shows another transaction where the checkpoint's was (checkpoint-skip.ts). */
  private checkHistory(commitLsn: Lsn, tx: TxIdentity): void {
    const mismatch = this.delivered.transaction(commitLsn, tx);
    if (!mismatch) return;
    throw new RelayError(
      'CHECKPOINT_MISMATCH',
      `the exactly-once checkpoint names a transaction this server's WAL does not hold: ${mismatch}. The database's WAL history is not the one the relay relayed from (a restore, or a failover to a standby that had not received it). Nothing was lost: this session confirmed nothing past where it started, so the slot still holds what it skipped. To start exactly-once afresh, set a new RELAY_TRANSACTIONAL_ID (events Kafka already holds from this slot may then be sent again)`,
      { retryable: false },
    );
  }
}
