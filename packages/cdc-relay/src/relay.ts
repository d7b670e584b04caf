/**
 * The relay's lifecycle. One ReplicationSession per connection; the supervisor
 * loop below replaces a failed session after a backoff.
 *
 *                   slot ready, streaming              stop()
 *  ┌────────────┐ ─────────────────────▶ ┌───────────┐ ───────▶ ┌──────────┐
 *  │ connecting │                        │ streaming │          │ draining │
 *  └────────────┘                        └───────────┘          └──────────┘
 *    │ │  │   ▲                            │       │                 │
 *    │ │(1) │ delay elapsed         (1)  │       │ fatal (2)       │ acked, or timeout
 *    │ │  ▼   │                            │       ▼                 ▼
 *    │ │┌─────────┐ ◀──────────────────────┘   ┌───────────────────────────┐
 *    │ ││ backoff │ ────────── stop() ───────▶ │          stopped          │
 *    │ │└─────────┘                            └───────────────────────────┘
 *    │ │ (3)                                             ▲         ▲
 *    │ ▼                                                 │         │ stop()
 *    │ ┌─────────┐  slot free: streaming as above        │         │
 *    │ │ standby │ ──────────────────────────────────────┼─────────┘
 *    │ └─────────┘ ◀─ polls every RELAY_STANDBY_POLL_MS ─┘ (its own loop)
 *    └──────────────── fatal (2), or stop() ─────────────────┘
 *
 * (1) A retryable error other than a held slot, after a wait that grows with each
 *     session that failed before streaming HEALTHY_SESSION_MS (session-failures.ts,
 *     backoff.ts).
 *     PUBLICATION_DRIFT (the publication does not publish the outbox's inserts,
 *     see publication-check.ts) and KAFKA_TOPIC_REFUSED (a topic Kafka will not
 *     take records for; waits the longest at once) are shown as `blocked`
 *     instead of `backoff`: the same loop, but a human must act, and the state
 *     stays `blocked` (no `connecting` between checks) until it streams.
 * (2) run() rejects with a non-retryable RelayError; cli/run-command.ts exits non-zero.
 *     Except OUTBOX_ROW_UNMAPPABLE (a row no session can relay, and no
 *     RELAY_DEAD_LETTER_TOPIC): the relay stays up `blocked`, starting no more
 *     sessions, until stop().
 * (3) SLOT_IN_USE: another relay streams from the slot. With RELAY_STANDBY
 *     (the default) this one waits as a standby (standby-wait.ts), trying again every
 *     RELAY_STANDBY_POLL_MS, for as long as it takes; Postgres lets one
 *     connection stream from a slot, which is what keeps two relays from
 *     streaming at once. With RELAY_STANDBY=false it gives up after
 *     RELAY_SLOT_BUSY_TIMEOUT_MS (by default the server's wal_sender_timeout
 *     + 10 s), which is then fatal.
 *
 * Each session's slot is taken by slot-open.ts; what the relay reports (status
 * page, gauges, log) is relay-reporting.ts.
 */
import { formatLsn, resolvePgUrl } from '@walnut/schema';
import type { Logger } from 'pino';
import type { TxToken } from './ack-tracker.ts';
import { readDeliveredPosition } from './checkpoint/last-checkpoint.ts';
import type { RelayConfig } from './config.ts';
import { toRelayError } from './errors.ts';
import type { RelayMetrics } from './http/metrics.ts';
import type { RelayStatus } from './http/relay-status.ts';
import { PublicationGuard } from './publication-check.ts';
import { streamSink } from './publish/stream-sink.ts';
import type { OpenSink, SinkConnection } from './publish/sink.ts';
import { ProgressLog, type RelayReporters, type RelayState, reportState, sessionMetrics } from './relay-reporting.ts';
import { ReplicationSession } from './replication-session.ts';
import { SessionFailures } from './session-failures.ts';
import { type OpenedSlot, SlotOpener } from './slot-open.ts';
import { statusIntervalFor } from './standby-status-update.ts';
import { StandbyWait } from './standby-wait.ts';

export type { RelayState } from './relay-reporting.ts';

/** A stuck producer must not hold up the supervisor: give up waiting after ms. */
function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

export class Relay {
  private current: RelayState = 'connecting';
  private session: ReplicationSession | null = null;
  private stopping = false;
  private wakeBackoff: (() => void) | null = null;
  /** Takes the slot for each session; remembers what the server said about it. */
  private readonly slots: SlotOpener;
  /** While another relay holds the slot (SLOT_IN_USE with RELAY_STANDBY). */
  private readonly standby: StandbyWait;
  /** Checks the publication at each session's start and while streaming; remembers the outbox's oid. */
  private readonly publication: PublicationGuard;
  private readonly progress: ProgressLog;
  private readonly reporters: RelayReporters;

  constructor(
    private readonly config: RelayConfig,
    private readonly log: Logger,
    private readonly metrics?: RelayMetrics,
    private readonly status?: RelayStatus,
    onState?: (state: RelayState) => void,
  ) {
    this.slots = new SlotOpener(config, log);
    this.standby = new StandbyWait(config);
    this.publication = new PublicationGuard({
      databaseUrl: config.databaseUrl,
      publication: config.publication,
      schema: config.outbox.schema,
      table: config.outbox.table,
      checkIntervalMs: config.publicationCheckMs,
    });
    this.progress = new ProgressLog(log);
    this.reporters = { log, metrics, status, onState };
  }

  get state(): RelayState {
    return this.current;
  }

  /** Records and encoded bytes buffered or sent and not yet acked, in the current session. */
  get inflight(): { records: number; bytes: number } {
    return { records: this.session?.inflightRecords ?? 0, bytes: this.session?.bufferedBytes ?? 0 };
  }

  /** Streaming with a live session: what /ready reports. */
  get ready(): boolean {
    return this.current === 'streaming' && this.session !== null;
  }

  /** Resolves after a graceful stop(); rejects with a non-retryable RelayError. */
  async run(): Promise<void> {
    const failures = new SessionFailures(this.config.backoffMaxMs, this.config.slot);
    /** A row no session can relay (OUTBOX_ROW_UNMAPPABLE): blocked until stop(). */
    let held = false;
    try {
      while (!this.stopping) {
        if (held) {
          await this.sleep(Number.POSITIVE_INFINITY);
          break;
        }
        // A standby's polls are not state changes: one log line when the role changes, not one per poll.
        // Nor are a blocked relay's checks: it stays blocked until it streams again.
        if (this.current !== 'standby' && this.current !== 'blocked') this.transition('connecting');
        let sink: SinkConnection<TxToken> | undefined;
        try {
          // One server per session (a multi-host URL's primary, found again after a failover):
          // the slot is inspected where it is then streamed.
          const databaseUrl = await resolvePgUrl(this.config.databaseUrl);
          const slot = await this.slots.open(databaseUrl);
          // PUBLICATION_DRIFT is retryable: the relay waits in backoff, saying so, until it is fixed.
          await this.publication.open(databaseUrl);
          sink = await streamSink(this.config, slot);
          const session = this.newSession(databaseUrl, slot, sink.open);
          this.session = session;
          if (this.stopping) break;
          this.progress.follow(session);
          await session.start();
          if (this.stopping) break;
          this.transition('streaming', { from: formatLsn(slot.startLsn) });
          failures.streaming();
          await session.done;
        } catch (error) {
          const failure = toRelayError(error);
          if (failure.code === 'OUTBOX_ROW_UNMAPPABLE') {
            if (this.stopping) break;
            // Every session would fail at the same row (and resend what precedes it in its
            // transaction): no more sessions. The relay stays up saying so until it is restarted
            // with a setting that lets the row through (the error names them).
            this.transition('blocked', { code: failure.code, error: failure.message });
            held = true;
            continue;
          }
          if (!failure.retryable) throw failure;
          this.metrics?.reconnects.inc({ code: failure.code });
          if (this.stopping) break;
          if (failure.code === 'SLOT_IN_USE' && this.config.standby) {
            this.transition('standby', { holder: failure.message });
            await this.standby.whileSlotHeld(
              (ms) => this.sleep(ms),
              () => this.stopping,
            );
            continue;
          }
          const retry = failures.retry(failure, this.slots.slotBusyTimeoutMs);
          this.transition(retry.state, { code: failure.code, error: failure.message, delayMs: retry.delayMs });
          await this.sleep(retry.delayMs);
        } finally {
          this.publication.close();
          await this.session?.stop(0).catch(() => {});
          this.session = null;
          // Forced: a send still retrying must stop now, not after its retries run out.
          if (sink) await withTimeout(sink.release(), 5_000);
        }
      }
    } finally {
      await this.standby.close();
      this.transition('stopped');
    }
  }

  /** The session for one connection to databaseUrl, sending into a sink of its own (see streamSink). */
  private newSession(databaseUrl: string, slot: OpenedSlot, openSink: OpenSink<TxToken>): ReplicationSession {
    return new ReplicationSession(
      {
        ...this.config,
        databaseUrl,
        statusIntervalMs: statusIntervalFor(this.config.statusIntervalMs, slot.walSenderTimeoutMs),
      },
      slot.startLsn,
      openSink,
      this.log,
      this.metrics && sessionMetrics(this.metrics, this.status),
      this.config.delivery === 'exactly-once' ? () => readDeliveredPosition(this.config, slot.checkpoint) : undefined,
      this.publication,
    );
  }

  /** Graceful: stop reading WAL, wait (bounded) for acks, confirm, close. */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.wakeBackoff?.();
    const session = this.session;
    if (session) {
      if (this.current === 'streaming') this.transition('draining');
      await session.stop(this.config.shutdownTimeoutMs);
    }
  }

  private transition(next: RelayState, fields: Record<string, unknown> = {}): void {
    if (next === this.current && next !== 'backoff' && next !== 'blocked') return;
    this.current = next;
    reportState(this.reporters, next, fields);
  }

  /** Until stop() wakes it, or ms elapse; Infinity: until stop(). */
  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = Number.isFinite(ms) ? setTimeout(resolve, ms) : undefined;
      this.wakeBackoff = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }
}
