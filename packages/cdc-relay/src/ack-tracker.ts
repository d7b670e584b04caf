import type { Lsn } from '@walnut/schema';

/**
 * The LSN-confirm rule, whole: which LSN the relay may report to Postgres as
 * flushed. Pure: no I/O, no timers. The replication session and the Kafka sink
 * only report facts to it (a transaction began or committed, a record was sent
 * or acked, a WAL message arrived or was handled, a keepalive came); the
 * session sends what `flushLsnToReport` returns.
 *
 * 1. pgoutput delivers whole transactions in commit order. A transaction is done
 *    once it has committed (its end LSN is known) and Kafka has acked every
 *    record it produced. The confirmable LSN is the end LSN of the newest
 *    transaction for which it and every earlier transaction are done: acks that
 *    complete out of order never move it past an unacked record, so a crash
 *    loses nothing (the slot replays from the confirmed LSN and Kafka sees
 *    duplicates, never gaps).
 * 2. A server keepalive carries the WAL position the walsender has sent up to.
 *    With nothing open or unacked, every commit before it has reached us and
 *    been acked, so confirming it is safe; it is what lets an idle outbox stop
 *    pinning WAL while other tables are busy. The replication library emits
 *    keepalives as they arrive, ahead of data messages still queued behind its
 *    flow-control gate, so a keepalive counts only once every message received
 *    before it has been handled.
 * 3. The wire format: the client library reports `lsn + 1` as flushed. One past
 *    a commit's end could skip a transaction whose commit record starts exactly
 *    there, so the LSN handed to it is one less, and the server sees exactly
 *    the confirmed LSN.
 */
export class AckTracker {
  /** Committed-or-open transactions not yet confirmed, oldest first. */
  private readonly queue: TxSlot[] = [];
  private head = 0;
  private open: TxSlot | null = null;
  private confirmed: Lsn;
  private inflight = 0;
  private received = 0;
  private handled = 0;
  private deferredKeepalive: { walEnd: Lsn; afterMessage: number } | null = null;

  constructor(startLsn: Lsn) {
    this.confirmed = startLsn;
  }

  /** The LSN Postgres may forget WAL before. Advances as transactions complete. */
  get confirmedLsn(): Lsn {
    this.collect();
    return this.confirmed;
  }

  /** Records handed to Kafka and not yet acked, across all transactions. */
  get inflightRecords(): number {
    return this.inflight;
  }

  /** Transactions waiting on acks or on their commit, the open one included. */
  get pendingTransactions(): number {
    return this.queue.length - this.head;
  }

  /**
   * What to pass the replication library as flushed (rule 3), or null while
   * nothing can be confirmed yet.
   */
  get flushLsnToReport(): Lsn | null {
    const lsn = this.confirmedLsn;
    return lsn > 0n ? lsn - 1n : null;
  }

  begin(): TxToken {
    if (this.open) throw new Error('begin while a transaction is open');
    const slot: TxSlot = { pending: 0, endLsn: null };
    this.queue.push(slot);
    this.open = slot;
    return slot;
  }

  /** Counts one record of the open transaction as sent; returns what ack() takes. */
  track(): TxToken {
    if (!this.open) throw new Error('record outside a transaction');
    this.open.pending++;
    this.inflight++;
    return this.open;
  }

  ack(token: TxToken): void {
    const slot = token as TxSlot;
    if (slot.pending <= 0) throw new Error('ack without a pending record');
    slot.pending--;
    this.inflight--;
  }

  commit(endLsn: Lsn): void {
    if (!this.open) throw new Error('commit without a transaction');
    this.open.endLsn = endLsn;
    this.open = null;
  }

  /** A WAL data message arrived from the server (it may wait behind flow control before it is handled). */
  messageReceived(): void {
    this.received++;
  }

  /** A data message was handled: its records, if any, were handed to the sink. */
  messageHandled(): void {
    this.handled++;
    const deferred = this.deferredKeepalive;
    if (deferred && this.handled >= deferred.afterMessage) {
      this.deferredKeepalive = null;
      this.keepaliveCaughtUp(deferred.walEnd);
    }
  }

  /** A server keepalive (rule 2): applied now if every message before it was handled, else once they are. */
  keepalive(walEnd: Lsn): void {
    if (this.handled >= this.received) this.keepaliveCaughtUp(walEnd);
    else this.deferredKeepalive = { walEnd, afterMessage: this.received };
  }

  private keepaliveCaughtUp(walEnd: Lsn): void {
    this.collect();
    if (this.open || this.pendingTransactions > 0) return;
    if (walEnd > this.confirmed) this.confirmed = walEnd;
  }

  private collect(): void {
    while (this.head < this.queue.length) {
      const slot = this.queue[this.head] as TxSlot;
      if (slot.endLsn === null || slot.pending > 0) break;
      if (slot.endLsn > this.confirmed) this.confirmed = slot.endLsn;
      this.head++;
    }
    // Compact now and then so a long-running relay does not keep every slot ever seen.
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue.splice(0, this.head);
      this.head = 0;
    }
  }
}

interface TxSlot {
  pending: number;
  endLsn: Lsn | null;
}

/** Opaque handle of a transaction, returned by track() and given back to ack(). */
export type TxToken = object;
