import { formatLsn, type Lsn, parseLsn } from '@walnut/schema';
import { LogicalReplicationService, PgoutputPlugin } from 'pg-logical-replication';
import type { Logger } from 'pino';
import { AckTracker } from './ack-tracker.ts';
import type { CheckpointIdentity } from './checkpoint.ts';
import type { RelayConfig } from './config.ts';
import { RelayError, toRelayError } from './errors.ts';
import type { RelayProducer } from './kafka-producer.ts';
import { KafkaSink, type SinkObserver } from './kafka-sink.ts';
import { messageRecord } from './message-mapping.ts';
import { outboxRowMapper, type TxPosition } from './outbox-mapping.ts';
import { PgoutputDecoder, type PgoutputMessage } from './pgoutput.ts';

/**
 * One replication connection's lifetime: stream pgoutput from the slot, hand
 * outbox inserts to the Kafka sink, and report the LSN the ack tracker allows.
 * When it ends, for any reason, its in-memory state is thrown away: the next
 * session resumes from the slot's confirmed LSN, so nothing unacked is lost.
 */
export class ReplicationSession {
  private readonly tracker: AckTracker;
  private readonly sink: KafkaSink;
  private readonly service: LogicalReplicationService;
  private readonly plugin: DecodingPgoutputPlugin;
  private tx: TxPosition | null = null;
  private statusTimer: NodeJS.Timeout | null = null;
  private trailingReport: NodeJS.Timeout | null = null;
  private ended = false;
  private draining: Promise<void> | null = null;
  private releaseHandler: (() => void) | null = null;
  /** Keepalives overtake queued data messages; see onKeepalive(). */
  private received = 0;
  private processed = 0;
  private acked = 0;
  private lastReportAt = 0;
  private deferredKeepalive: { walEnd: Lsn; afterMessage: number } | null = null;
  private resolveDone!: () => void;
  private rejectDone!: (error: RelayError) => void;
  /** Settles when the session ends: resolves after stop(), rejects on failure. */
  readonly done: Promise<void>;

  constructor(
    private readonly config: RelayConfig,
    private readonly startLsn: Lsn,
    producer: RelayProducer,
    checkpoint: CheckpointIdentity,
    private readonly log: Logger,
    private readonly observer?: SessionObserver,
  ) {
    this.done = new Promise<void>((resolve, reject) => {
      this.resolveDone = resolve;
      this.rejectDone = reject;
    });
    // Callers may only look at `done` later; a rejection is still handled then.
    this.done.catch(() => {});
    this.tracker = new AckTracker(this.startLsn);
    this.sink = new KafkaSink(
      producer,
      this.tracker,
      {
        maxBatchRecords: config.maxBatchRecords,
        maxBatchBytes: config.maxBatchBytes,
        maxRequestsInFlight: config.maxRequestsInFlight,
        maxRecordBytes: config.maxRecordBytes,
        deadLetterTopic: config.deadLetterTopic,
        sendTimeoutMs: config.kafkaSendTimeoutMs,
        lingerMs: config.lingerMs,
        maxInflightRecords: config.maxInflightRecords,
        maxInflightBytes: config.maxInflightBytes,
        checkpoint,
        checkpointIntervalMs: config.checkpointIntervalMs,
      },
      (error) => this.fail(error),
      {
        onAcked: (records, bytes, latencyMs) => {
          this.acked += records;
          this.reportSoon();
          observer?.onAcked(records, bytes, latencyMs);
        },
        onSent: (requestsInFlight) => observer?.onSent?.(requestsInFlight),
      },
    );
    this.service = new LogicalReplicationService(
      { connectionString: config.databaseUrl },
      // The library's own acknowledgements report what was *received*; the relay
      // must only ever report what Kafka acked, so both are switched off.
      { acknowledge: { auto: false, timeoutSeconds: 0 }, flowControl: { enabled: true } },
    );
    this.plugin = new DecodingPgoutputPlugin(
      { protoVersion: 1, publicationNames: [config.publication], messages: config.messages.prefixes.length > 0 },
      () => this.received++,
    );
  }

  get confirmedLsn(): Lsn {
    return this.tracker.confirmedLsn;
  }

  /** Records Kafka acked in this session. */
  get ackedRecords(): number {
    return this.acked;
  }

  get inflightRecords(): number {
    return this.tracker.inflightRecords;
  }

  /** Encoded bytes buffered or sent and not yet acked. */
  get bufferedBytes(): number {
    return this.sink.bufferedBytes;
  }

  /**
   * Resolves once Kafka has fenced any earlier producer of this slot and the
   * server has started streaming.
   */
  async start(): Promise<void> {
    await Promise.race([this.sink.start(), this.done]);
    const started = new Promise<void>((resolve) => this.service.once('start', () => resolve()));
    this.service.on('data', (_lsn: string, message: PgoutputMessage) => this.onMessage(message));
    this.service.on('heartbeat', (lsn: string, _ts: number, shouldRespond: boolean) =>
      this.onKeepalive(parseLsn(lsn), shouldRespond),
    );
    this.service.on('error', (error: Error) => this.fail(toRelayError(error)));
    this.service.subscribe(this.plugin, this.config.slot, formatLsn(this.startLsn)).then(
      () => this.fail(new RelayError('REPLICATION_STREAM_FAILED', 'the server ended replication', { retryable: true })),
      (error: unknown) => this.fail(toRelayError(error)),
    );
    this.statusTimer = setInterval(() => this.reportStatus(), this.config.statusIntervalMs);
    await Promise.race([started, this.done]);
  }

  /**
   * Graceful end: stop taking WAL, give Kafka up to timeoutMs to ack what is in
   * flight, confirm what was acked, close. Unacked records replay next time.
   */
  stop(timeoutMs: number): Promise<void> {
    this.draining ??= (async () => {
      const drained = await this.sink.drain(timeoutMs);
      if (!drained)
        this.log.warn({ inflight: this.tracker.inflightRecords }, 'shutdown timeout: unacked records will replay');
      this.reportStatus();
      await this.end();
      this.resolveDone();
    })();
    return this.draining;
  }

  /**
   * The library waits for a returned promise before it hands over the next
   * message (its flow control): one comes back only while the sink's window
   * is full or the session drains, so most messages cost none.
   */
  private onMessage(message: PgoutputMessage): Promise<void> | undefined {
    if (this.ended) return undefined;
    if (this.draining) {
      // Holding the handler keeps the library's flow control paused: no more WAL is read.
      return new Promise<void>((resolve) => {
        this.releaseHandler = resolve;
      });
    }
    let pending: Promise<void> | undefined;
    try {
      pending = this.apply(message);
    } catch (error) {
      this.fail(toRelayError(error));
      return undefined;
    }
    if (!pending) {
      this.afterMessage();
      return undefined;
    }
    return pending.then(
      () => this.afterMessage(),
      // The library would log a handler error and move on to the next message;
      // skipping a row is never acceptable, so the session ends instead.
      (error: unknown) => this.fail(toRelayError(error)),
    );
  }

  private afterMessage(): void {
    this.processed++;
    const deferred = this.deferredKeepalive;
    if (deferred && this.processed >= deferred.afterMessage) {
      this.deferredKeepalive = null;
      this.tracker.keepalive(deferred.walEnd);
    }
  }

  private apply(message: PgoutputMessage): Promise<void> | undefined {
    switch (message.tag) {
      case 'begin':
        this.tracker.begin();
        this.tx = {
          commitLsn: message.commitLsn,
          xid: message.xid,
          commitTimeMicros: message.commitTimeMicros,
          seq: 0,
        };
        return;
      case 'insert': {
        const { relation } = message;
        const outbox = this.config.outbox;
        if (relation.schema !== outbox.schema || relation.name !== outbox.table) return;
        if (!this.tx)
          throw new RelayError('REPLICATION_STREAM_FAILED', 'insert outside a transaction', { retryable: true });
        const record = outboxRowMapper(outbox, relation)(message.values, this.tx);
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
      this.tx.seq++;
      return this.sink.push(record, this.tracker.track());
    }
    const lsn = message.messageLsn;
    const at = { commitLsn: lsn, xid: 0, commitTimeMicros: BigInt(Date.now()) * 1000n, seq: 0 };
    const record = messageRecord(this.config.messages, message.prefix, message.content, at);
    if (!record) return undefined;
    this.tracker.begin();
    const token = this.tracker.track();
    this.tracker.commit(parseLsn(lsn));
    return this.sink.push(record, token);
  }

  /**
   * The library emits keepalives as they arrive, ahead of data messages still
   * queued behind the flow-control gate. A keepalive only vouches for messages
   * sent before it, so it is applied once those have been processed.
   */
  private onKeepalive(walEnd: Lsn, shouldRespond: boolean): void {
    if (this.processed >= this.received) this.tracker.keepalive(walEnd);
    else this.deferredKeepalive = { walEnd, afterMessage: this.received };
    if (shouldRespond) this.reportStatus();
  }

  /**
   * Reports right after acks (at most every REPORT_GAP_MS) rather than only on
   * the timer: what is acked but unreported is what a crash replays as duplicates.
   */
  private reportSoon(): void {
    const sinceMs = performance.now() - this.lastReportAt;
    if (sinceMs >= REPORT_GAP_MS) {
      this.reportStatus();
      return;
    }
    // Trailing report: the last acks of a burst must not wait for the status timer.
    this.trailingReport ??= setTimeout(() => {
      this.trailingReport = null;
      this.reportStatus();
    }, REPORT_GAP_MS - sinceMs);
  }

  /**
   * Sent on a timer as well as on request, so wal_sender_timeout never fires
   * while Kafka is down and the WAL reader is paused.
   */
  private reportStatus(): void {
    if (this.ended) return;
    const lsn = this.tracker.confirmedLsn;
    // acknowledge() reports lsn + 1 as flushed. One past a commit's end could
    // skip a transaction whose commit record starts exactly there, so the relay
    // passes lsn - 1 and the server sees exactly the confirmed LSN.
    if (lsn > 0n) void this.service.acknowledge(formatLsn(lsn - 1n));
    this.lastReportAt = performance.now();
    this.observer?.onConfirmed?.(lsn, this.tracker.inflightRecords);
  }

  private fail(error: RelayError): void {
    if (this.ended) return;
    // What Kafka committed before the failure is confirmed now, not replayed by the next session.
    this.reportStatus();
    void this.end().then(() => this.rejectDone(error));
  }

  private async end(): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    if (this.statusTimer) clearInterval(this.statusTimer);
    if (this.trailingReport) clearTimeout(this.trailingReport);
    this.sink.close();
    this.releaseHandler?.();
    await this.service.destroy().catch(() => {});
  }
}

export interface SessionObserver extends SinkObserver {
  onConfirmed?(lsn: Lsn, inflightRecords: number): void;
}

const REPORT_GAP_MS = 50;

/**
 * pg-logical-replication drives the slot (START_REPLICATION, flow control,
 * keepalives); the messages themselves are decoded by pgoutput.ts.
 */
class DecodingPgoutputPlugin extends PgoutputPlugin {
  private readonly decoder = new PgoutputDecoder();

  constructor(
    options: ConstructorParameters<typeof PgoutputPlugin>[0],
    private readonly onDataMessage: () => void,
  ) {
    super(options);
  }

  // The library's types say its own message union; the relay's handler takes this one.
  override parse(buffer: Buffer): never {
    this.onDataMessage();
    return this.decoder.decode(buffer) as never;
  }
}
