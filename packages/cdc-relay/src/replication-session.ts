import { formatLsn, type Lsn, parseLsn } from '@walnut/schema';
// The package's index also loads its decoderbufs plugin, with protobufjs: deep imports keep that out of the bundle.
import { LogicalReplicationService } from 'pg-logical-replication/dist/logical-replication-service.js';
import type { Logger } from 'pino';
import { AckTracker, type TxToken } from './ack-tracker.ts';
import { ResumedStream } from './checkpoint/resumed-stream.ts';
import type { RelayConfig } from './config.ts';
import { allowOptimization } from './deferred-optimization.ts';
import { RelayError, toRelayError } from './errors.ts';
import type { RecordPosition } from './kafka-record.ts';
import type { PgoutputMessage } from './pgoutput.ts';
import { DecodingPgoutputPlugin } from './pgoutput-plugin.ts';
import type { OpenSink, RecordSink, SinkObserver } from './publish/sink.ts';
import type { PublicationGuard } from './publication-check.ts';
import { StandbyStatusUpdates } from './standby-status-update.ts';
import { TransactionStream } from './transaction-stream.ts';

/**
 * One replication connection's lifetime: stream pgoutput from the slot, hand
 * its messages to a TransactionStream (which turns outbox inserts into the
 * sink's records, publish/sink.ts), and report the LSN the ack tracker allows:
 * the confirm and the keepalives are here (reportStatus, onKeepalive).
 * When it ends, for any reason, its in-memory state is thrown away: the next
 * session resumes from the slot's confirmed LSN, so nothing unacked is lost.
 *
 *   ┌──────────┐ slot taken, then fenced  ┌───────────┐  stop()  ┌──────────┐
 *   │ starting │ ───────────────────────▶ │ streaming │ ───────▶ │ draining │
 *   └──────────┘                          └───────────┘          └──────────┘
 *        │ failure                              │ failure             │ acked, or timeout
 *        ▼                                      ▼                     ▼
 *   ┌───────────────────────────────────────────────────────────────────────┐
 *   │ ended: `done` resolves after stop(), rejects with the failure's error │
 *   └───────────────────────────────────────────────────────────────────────┘
 *
 * While starting (between taking the slot and fencing older producers) and
 * while draining, the message handler holds the next WAL message, which keeps
 * the library's flow control paused: nothing more is read.
 */
export class ReplicationSession {
  private readonly tracker: AckTracker;
  private readonly sink: RecordSink<TxToken>;
  private readonly service: LogicalReplicationService;
  private readonly plugin: DecodingPgoutputPlugin;
  private readonly reports: StandbyStatusUpdates;
  private readonly stream: TransactionStream;
  private state: SessionState = 'starting';
  private stopping: Promise<void> | null = null;
  private releaseHandler: (() => void) | null = null;
  /** Holds WAL messages until the session has fenced older producers (see start()). */
  private gate: Promise<void> | null;
  private openGate!: () => void;
  private acked = 0;
  /** Exactly-once: which records are in Kafka already and are skipped (checkpoint/resumed-stream.ts). */
  private resumed: ResumedStream | null = null;
  private resolveDone!: () => void;
  private rejectDone!: (error: RelayError) => void;
  /** Settles when the session ends: resolves after stop(), rejects on failure. */
  readonly done: Promise<void>;

  constructor(
    private readonly config: RelayConfig,
    private readonly startLsn: Lsn,
    /** The session's sink: its start() fences older writers of the slot. */
    openSink: OpenSink<TxToken>,
    private readonly log: Logger,
    private readonly observer?: SessionObserver,
    /** Exactly-once: the last record Kafka holds, read to the high watermark (aborted and still-open transactions left out) once this session has fenced the last. */
    private readonly readDelivered?: () => Promise<RecordPosition | null>,
    /** Opened (its check passed) by the caller: caps what is confirmed, and ends the session on drift. */
    private readonly guard?: PublicationGuard,
  ) {
    this.done = new Promise<void>((resolve, reject) => {
      this.resolveDone = resolve;
      this.rejectDone = reject;
    });
    // Callers may only look at `done` later; a rejection is still handled then.
    this.done.catch(() => {});
    this.gate = new Promise<void>((resolve) => {
      this.openGate = () => {
        this.gate = null;
        resolve();
      };
    });
    this.tracker = new AckTracker(this.startLsn);
    this.sink = openSink({
      acked: (token) => this.tracker.ack(token),
      failed: (error) => this.fail(error),
      onAcked: (records, bytes, latencyMs) => {
        this.acked += records;
        this.reports.soon();
        observer?.onAcked?.(records, bytes, latencyMs);
      },
      onSent: (requestsInFlight) => observer?.onSent?.(requestsInFlight),
    });
    this.stream = new TransactionStream(config, this.tracker, this.sink, guard);
    this.service = new LogicalReplicationService(
      { connectionString: config.databaseUrl },
      // The library's own acknowledgements report what was *received*; the relay
      // must only ever report what Kafka acked, so both are switched off.
      { acknowledge: { auto: false, timeoutSeconds: 0 }, flowControl: { enabled: true } },
    );
    this.plugin = new DecodingPgoutputPlugin(
      { protoVersion: 1, publicationNames: [config.publication], messages: config.messages.prefixes.length > 0 },
      () => this.tracker.messageReceived(),
    );
    this.reports = new StandbyStatusUpdates(() => this.reportStatus(), config.statusIntervalMs);
  }

  /** What Kafka acked, capped at the last good publication check (publication-check.ts). */
  get confirmedLsn(): Lsn {
    let confirmed = this.tracker.confirmedLsn;
    // Skipped on a checkpoint the stream has not shown yet: if it never does, the slot must replay them.
    if (this.resumed?.verifying && confirmed > this.startLsn) confirmed = this.startLsn;
    return this.guard ? this.guard.cap(confirmed) : confirmed;
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
    // The slot first: Postgres lets one connection stream from a slot, so a relay that
    // loses it (a standby racing another for a freed slot) fails here, with SLOT_IN_USE,
    // before it has fenced the winner's producer. WAL messages wait behind the gate.
    const started = new Promise<void>((resolve) => this.service.once('start', () => resolve()));
    this.service.once('data', allowOptimization);
    this.service.on('data', (_lsn: string, message: PgoutputMessage) => {
      return this.gate ? this.gate.then(() => this.onMessage(message)) : this.onMessage(message);
    });
    this.service.on('heartbeat', (lsn: string, _ts: number, shouldRespond: boolean) =>
      this.onKeepalive(parseLsn(lsn), shouldRespond),
    );
    this.service.on('error', (error: Error) => this.fail(toRelayError(error)));
    this.service.subscribe(this.plugin, this.config.slot, formatLsn(this.startLsn)).then(
      () => this.fail(new RelayError('REPLICATION_STREAM_FAILED', 'the server ended replication', { retryable: true })),
      (error: unknown) => this.fail(toRelayError(error)),
    );
    this.reports.start();
    this.guard?.watch(
      (error) => this.fail(error),
      () => this.reports.soon(),
    );
    await Promise.race([started, this.done]);
    // Stopped meanwhile (`done` resolved): without the slot, fencing would only knock out
    // the producer of the relay that has it.
    if (this.state !== 'starting') return;
    // Then the fence: the slot's transactional id is taken over, aborting what an earlier
    // session or relay left open, before any record of this session is sent.
    await Promise.race([this.sink.start(), this.done]);
    if (this.state !== 'starting') return;
    // Only after the fence: a transaction the last session left open is aborted now, so
    // the checkpoint read cannot be overtaken by one of its commits.
    if (this.readDelivered) {
      const checkpoint = await Promise.race([this.readDelivered(), this.done.then(() => null)]);
      if (this.state !== 'starting') return;
      this.resumed = new ResumedStream(checkpoint, this.startLsn, this.log);
      this.stream.resumed = this.resumed;
    }
    this.openGate();
    if (this.state === 'starting') this.state = 'streaming';
  }

  /**
   * Graceful end: stop taking WAL, give Kafka up to timeoutMs to ack what is in
   * flight, confirm what was acked, close. Unacked records replay next time.
   */
  stop(timeoutMs: number): Promise<void> {
    if (this.state === 'ended') return this.done.catch(() => {});
    this.state = 'draining';
    this.stopping ??= (async () => {
      const drained = await this.sink.drain(timeoutMs);
      if (!drained)
        this.log.warn({ inflight: this.tracker.inflightRecords }, 'shutdown timeout: unacked records will replay');
      await this.guard?.settle(2_000);
      this.reports.now();
      await this.end();
      this.resolveDone();
    })();
    return this.stopping;
  }

  /**
   * The library waits for a returned promise before it hands over the next
   * message (its flow control): one comes back only while the sink's window
   * is full or the session drains, so most messages cost none.
   */
  private onMessage(message: PgoutputMessage): Promise<void> | undefined {
    if (this.state === 'ended') return undefined;
    if (this.state === 'draining') {
      return new Promise<void>((resolve) => {
        this.releaseHandler = resolve;
      });
    }
    let pending: Promise<void> | undefined;
    try {
      pending = this.stream.apply(message);
    } catch (error) {
      this.fail(toRelayError(error));
      return undefined;
    }
    if (!pending) {
      this.tracker.messageHandled();
      return undefined;
    }
    return pending.then(
      () => this.tracker.messageHandled(),
      // The library would log a handler error and move on to the next message;
      // skipping a row is never acceptable, so the session ends instead.
      (error: unknown) => this.fail(toRelayError(error)),
    );
  }

  private onKeepalive(walEnd: Lsn, shouldRespond: boolean): void {
    this.tracker.keepalive(walEnd);
    if (shouldRespond) this.reports.now();
  }

  private reportStatus(): void {
    if (this.state === 'ended') return;
    const confirmed = this.confirmedLsn;
    // The ack tracker's rule 3, at the capped LSN: the library reports one more than it is given.
    if (confirmed > 0n) void this.service.acknowledge(formatLsn(confirmed - 1n));
    this.observer?.onConfirmed?.(confirmed, this.tracker.inflightRecords);
  }

  private fail(error: RelayError): void {
    if (this.state === 'ended') return;
    // What Kafka committed before the failure is confirmed now, not replayed by the next session.
    this.reports.now();
    void this.end().then(() => this.rejectDone(error));
  }

  private async end(): Promise<void> {
    if (this.state === 'ended') return;
    this.state = 'ended';
    this.reports.stop();
    this.guard?.close();
    this.sink.close();
    this.releaseHandler?.();
    this.openGate();
    await this.service.destroy().catch(() => {});
  }
}

type SessionState = 'starting' | 'streaming' | 'draining' | 'ended';

export interface SessionObserver extends SinkObserver {
  onConfirmed?(lsn: Lsn, inflightRecords: number): void;
}
