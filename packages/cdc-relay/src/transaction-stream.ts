import type { AckTracker, TxToken } from './ack-tracker.ts';
import type { TxIdentity } from './checkpoint/checkpoint.ts';
import type { ResumedStream } from './checkpoint/resumed-stream.ts';
import type { RelayConfig } from './config.ts';
import { RelayError } from './errors.ts';
import type { RecordPosition } from './kafka-record.ts';
import { messageRecord } from './message-mapping.ts';
import { outboxRowMapper, type TxPosition } from './outbox-mapping.ts';
import type { PgoutputMessage } from './pgoutput.ts';
import type { PublicationGuard } from './publication-check.ts';
import type { RecordSink } from './publish/sink.ts';

/**
 * The decoded pgoutput stream of one session, message by message: outbox
 * inserts and relayed messages become records for the sink, each with its
 * position (commit LSN, index in its transaction), and the ack tracker learns
 * where each transaction begins and commits, so it confirms no LSN before
 * Kafka acked every record at or before it (ack-tracker.ts). Called on the hot
 * path: per record it only maps and pushes; whatever a transaction's records
 * share (its LSN's text, its headers) is made once, at its first record.
 */
export class TransactionStream {
  private tx: TxPosition | null = null;
  /** Exactly-once: the current transaction's xid and commit time, for each of its records' checkpoints. */
  private txIdentity: TxIdentity | undefined;
  /** The oid of the last Relation message under the outbox's name (publication-check.ts). */
  private outboxOid: number | undefined;
  /** Exactly-once: set once the session has read the checkpoint, before the first WAL message. */
  resumed: ResumedStream | null = null;

  constructor(
    private readonly config: Pick<RelayConfig, 'outbox' | 'messages'>,
    private readonly tracker: AckTracker,
    /** Only push: the session owns the sink's life (start, drain, close). */
    private readonly sink: Pick<RecordSink<TxToken>, 'push'>,
    private readonly guard?: PublicationGuard,
  ) {}

  /** A promise when the sink holds the stream back; throws a RelayError for a stream the relay cannot follow. */
  apply(message: PgoutputMessage): Promise<void> | undefined {
    switch (message.tag) {
      case 'begin':
        this.tracker.begin();
        this.tx = {
          commitLsn: message.commitLsn,
          xid: message.xid,
          commitTimeMicros: message.commitTimeMicros,
          seq: 0,
        };
        this.txIdentity = this.resumed?.begin(message.commitLsn, {
          xid: message.xid,
          commitTimeMicros: message.commitTimeMicros,
        });
        return;
      case 'insert': {
        const { relation } = message;
        const outbox = this.config.outbox;
        if (relation.schema !== outbox.schema || relation.name !== outbox.table) return;
        if (!this.tx)
          throw new RelayError('REPLICATION_STREAM_FAILED', 'insert outside a transaction', { retryable: true });
        if (this.resumed?.skip(this.tx)) return;
        const record = outboxRowMapper(outbox, relation)(message.values, this.tx);
        if (this.txIdentity) record.position.tx = this.txIdentity;
        this.tx.seq++;
        return this.sink.push(record, this.tracker.track());
      }
      case 'commit':
        this.tracker.commit(message.commitEndLsn);
        this.tx = null;
        return;
      case 'message':
        return this.applyMessage(message);
      case 'relation':
        this.outboxOid = this.guard ? this.guard.relation(message.relation, this.outboxOid) : undefined;
        return;
      case 'ignored':
        // Only outbox inserts and messages are events; a publication may carry more.
        return;
      default: {
        const unknown: never = message;
        throw new RelayError('REPLICATION_STREAM_FAILED', `unknown pgoutput message ${JSON.stringify(unknown)}`, {
          retryable: false,
        });
      }
    }
  }

  /**
   * pg_logical_emit_message: a transactional message is part of its transaction
   * like an outbox row; a non-transactional one arrives on its own, between
   * transactions, and is its own unit, confirmable at its LSN once acked.
   */
  private applyMessage(message: Extract<PgoutputMessage, { tag: 'message' }>): Promise<void> | undefined {
    if (message.transactional) {
      if (!this.tx)
        throw new RelayError('REPLICATION_STREAM_FAILED', 'message outside a transaction', { retryable: true });
      const record = messageRecord(this.config.messages, message.prefix, message.content, this.tx);
      if (!record) return undefined;
      if (this.resumed?.skip(this.tx)) return undefined;
      if (this.txIdentity) record.position.tx = this.txIdentity;
      this.tx.seq++;
      return this.sink.push(record, this.tracker.track());
    }
    const lsn = message.messageLsn;
    const at = { commitLsn: lsn, xid: 0, commitTimeMicros: BigInt(Date.now()) * 1000n, seq: 0 };
    const made = messageRecord(this.config.messages, message.prefix, message.content, at);
    if (!made) return undefined;
    // pgoutput gives the END of the message's WAL record, where the commit record of the next
    // transaction may start: its first event would share the position (X, 0), and a
    // checkpoint naming the message would skip that event. One byte earlier is still after
    // every earlier record (WAL records are 8-byte aligned) and before that transaction.
    const position: RecordPosition = { commitLsn: lsn - 1n, seq: 0 };
    if (this.resumed?.skipMessage(position)) return undefined;
    const record = { ...made, position };
    this.tracker.begin();
    const token = this.tracker.track();
    this.tracker.commit(lsn);
    return this.sink.push(record, token);
  }
}
