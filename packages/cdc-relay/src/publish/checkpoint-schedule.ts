import { type CheckpointIdentity, checkpointRecord } from '../checkpoint/checkpoint.ts';
import type { KafkaRecord, RecordPosition } from '../kafka-record.ts';

/** A checkpoint to send, and the position it names. */
export interface DueCheckpoint {
  position: RecordPosition;
  record: KafkaRecord;
}

/**
 * When the stream's checkpoint records go (checkpoint.ts says what they
 * are). A request spanning partitions is not atomic, so a request carries the
 * checkpoint of what Kafka had acked before it, never of its own records; a
 * transaction is atomic, so there (`ownRecords`) it names the request's own
 * last record. At most one per interval, and the last one alone once the
 * stream goes quiet, so it does not wait for the next row.
 */
export class CheckpointSchedule {
  /** Where the last acked record sits: what the next checkpoint says. */
  private acked: RecordPosition | null = null;
  /** The position the last acked checkpoint named. */
  private checkpointed: RecordPosition | null = null;
  /** The position the last sent checkpoint named, and when it was sent. */
  private sent: RecordPosition | null = null;
  private sentAt = Number.NEGATIVE_INFINITY;
  private timer: NodeJS.Timeout | null = null;
  /** The sink drains: the last checkpoint goes at once. */
  private flushing = false;

  constructor(
    private readonly identity: CheckpointIdentity,
    /**
     * Least time between two checkpoints. Every request carrying one, and a lone one
     * after every quiet moment, doubled the produce requests of a relay at a few
     * hundred rows/s; a checkpoint a second old still says where the relay was.
     */
    private readonly intervalMs: number,
    private readonly ownRecords: boolean,
  ) {}

  /** What a request whose last record is at `last` carries, if anything; counted as sent. */
  forRequest(last: RecordPosition): DueCheckpoint | null {
    const now = performance.now();
    const position = this.ownRecords ? last : this.acked !== this.sent && this.due(now) ? this.acked : null;
    return position ? this.sending(position, now) : null;
  }

  /** A request was acked, in order: its last record, and the checkpoint it carried (if any). */
  acknowledged(last: RecordPosition, checkpoint: RecordPosition | null): void {
    if (checkpoint) this.checkpointed = checkpoint;
    this.acked = last;
  }

  /** A lone checkpoint was acked. */
  loneAcked(position: RecordPosition): void {
    this.checkpointed = position;
  }

  /** Acked records no acked checkpoint names yet. */
  get owed(): boolean {
    return this.acked !== this.checkpointed;
  }

  /**
   * The lone checkpoint, if its interval is up (counted as sent); else null,
   * with a timer set that calls `retry` when it is.
   */
  loneWhenDue(retry: () => void): DueCheckpoint | null {
    const now = performance.now();
    if (this.due(now)) {
      this.stop();
      return this.sending(this.acked as RecordPosition, now);
    }
    if (!this.timer) {
      this.timer = setTimeout(
        () => {
          this.timer = null;
          retry();
        },
        this.sentAt + this.intervalMs - now,
      );
      // A pending checkpoint alone must not keep a stopping process alive.
      this.timer.unref();
    }
    return null;
  }

  flush(): void {
    this.flushing = true;
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private due(now: number): boolean {
    return this.flushing || now - this.sentAt >= this.intervalMs;
  }

  private sending(position: RecordPosition, now: number): DueCheckpoint {
    this.sent = position;
    this.sentAt = now;
    return { position, record: checkpointRecord(this.identity, position) };
  }
}
