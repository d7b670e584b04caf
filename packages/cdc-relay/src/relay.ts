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
 *     session that failed before streaming HEALTHY_SESSION_MS (backoff.ts).
 *     PUBLICATION_DRIFT (the publication does not publish the outbox's inserts,
 *     see publication-check.ts) and KAFKA_TOPIC_REFUSED (a topic Kafka will not
 *     take records for; waits the longest at once) are shown as `blocked`
 *     instead of `backoff`: the same loop, but a human must act, and the state
 *     stays `blocked` (no `connecting` between checks) until it streams.
 * (2) run() rejects with a non-retryable RelayError; cli/main.ts exits non-zero.
 *     Except OUTBOX_ROW_UNMAPPABLE (a row no session can relay, and no
 *     RELAY_DEAD_LETTER_TOPIC): the relay stays up `blocked`, starting no more
 *     sessions, until stop().
 * (3) SLOT_IN_USE: another relay streams from the slot. With RELAY_STANDBY
 *     (the default) this one waits as a standby, trying again every
 *     RELAY_STANDBY_POLL_MS, for as long as it takes; Postgres lets one
 *     connection stream from a slot, which is what keeps two relays from
 *     streaming at once. With RELAY_STANDBY=false it gives up after
 *     RELAY_SLOT_BUSY_TIMEOUT_MS (by default the server's wal_sender_timeout
 *     + 10 s), which is then fatal.
 */
import type { Lsn } from '@walnut/schema';
import { formatLsn, parseLsn, resolvePgUrl } from '@walnut/schema';
import type pg from 'pg';
import type { Logger } from 'pino';
import { SessionBackoff } from './backoff.ts';
import { type Checkpoint, type CheckpointIdentity, writtenForAnotherSlot } from './checkpoint/checkpoint.ts';
import { ensureCheckpointTopic, readCheckpoint } from './checkpoint/checkpoint-topic.ts';
import type { RelayConfig } from './config.ts';
import { RelayError, toRelayError } from './errors.ts';
import type { RelayMetrics } from './http/metrics.ts';
import type { RelayStatus } from './http/relay-status.ts';
import { closeForcibly, createProducer, type RelayProducer } from './kafka-producer.ts';
import type { RecordPosition } from './kafka-record.ts';
import { connectPgClient, withPgClient } from './pg-client.ts';
import { PublicationGuard } from './publication-check.ts';
import { ReplicationSession } from './replication-session.ts';
import { inspectSlot, slotBusyTimeoutMs } from './slot.ts';
import { alterSlotFailover, failoverWanted, noFailoverSlotsNote, recreateForFailoverHint } from './slot-failover.ts';
import { createPgoutputSlot } from './slot-lifecycle.ts';
import { statusIntervalFor } from './standby-status-update.ts';

interface OpenedSlot {
  startLsn: Lsn;
  transactionalId: string;
  checkpoint: CheckpointIdentity;
  /** The server's wal_sender_timeout; 0 when disabled. */
  walSenderTimeoutMs: number;
}

function slotMissing(slot: string, last: Checkpoint): RelayError {
  return new RelayError(
    'SLOT_MISSING',
    `replication slot ${slot} is gone, but this relay has relayed from it before: Kafka had acked everything up to at least the transaction that committed at LSN ${formatLsn(last.commitLsn)} (its event #${last.seq}, checkpointed ${last.relayedAt}). Events committed after that and before a new slot exists will never be relayed. To accept that gap and start from now, run: walnut-relay slot create --slot ${slot} (then re-publish the gap from the outbox table, if it still holds it, with walnut-relay replay --since a time safely before ${last.relayedAt}: duplicates are harmless, a gap is not; or drop nothing and run walnut-relay snapshot --slot ${slot} instead, which makes the slot and re-publishes every row the outbox holds before streaming on). On Postgres 17+ a failover slot (RELAY_SLOT_FAILOVER, docs/relay.md) keeps the slot through a primary failover`,
    { retryable: false },
  );
}

/**
 * A session that streamed this long (or RELAY_BACKOFF_MAX_MS, if longer) was
 * healthy: its failure starts the backoff over. One that fails sooner counts as
 * another failed attempt, so a fault that strikes right after `streaming` backs off.
 */
const HEALTHY_SESSION_MS = 30_000;

/**
 * Retryable, but only a human can fix them: shown as `blocked`, not `backoff`.
 * PUBLICATION_DRIFT: publication-check.ts. KAFKA_TOPIC_REFUSED: a topic Kafka
 * refuses to take records for (missing with auto-creation off, no ACL): tried
 * again at the backoff's cap, not as if it were transient.
 */
const BLOCKING_CODES: ReadonlySet<string> = new Set(['PUBLICATION_DRIFT', 'KAFKA_TOPIC_REFUSED']);

const RELAY_STATES = ['connecting', 'standby', 'streaming', 'draining', 'backoff', 'blocked', 'stopped'] as const;
export type RelayState = (typeof RELAY_STATES)[number];

/** active: streams (or drains) the slot; standby: waits for it. Other states keep the last role. */
function roleOf(state: RelayState): 'active' | 'standby' | undefined {
  if (state === 'streaming' || state === 'draining') return 'active';
  if (state === 'standby') return 'standby';
  return undefined;
}

/** A stuck producer must not hold up the supervisor: give up waiting after ms. */
function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function sessionMetrics(metrics: RelayMetrics, status: RelayStatus | undefined) {
  return {
    onAcked(records: number, bytes: number, latencyMs: number) {
      status?.onAcked(records, latencyMs);
      metrics.eventsRelayed.inc(records);
      metrics.bytesRelayed.inc(bytes);
      metrics.ackLatency.observe(latencyMs / 1000);
    },
    onSent(requestsInFlight: number) {
      metrics.produceRequests.inc({ in_flight: String(requestsInFlight) });
    },
    onConfirmed(lsn: bigint, inflight: number) {
      metrics.confirmedLsn.set(Number(lsn));
      metrics.inflightRecords.set(inflight);
    },
  };
}

export class Relay {
  private current: RelayState = 'connecting';
  private session: ReplicationSession | null = null;
  private stopping = false;
  private wakeBackoff: (() => void) | null = null;
  /** A standby's one connection for its polls (see waitWhileSlotHeld). */
  private standbyClient: pg.Client | null = null;
  /** How long a held slot is waited for; see RELAY_SLOT_BUSY_TIMEOUT_MS. Refined once the server's setting is known. */
  private slotBusyTimeoutMs: number;
  /** Said once per process: the server predates failover slots (Postgres 14-16). */
  private toldNoFailoverSlots = false;
  /** Checks the publication at each session's start and while streaming; remembers the outbox's oid. */
  private readonly publication: PublicationGuard;

  constructor(
    private readonly config: RelayConfig,
    private readonly log: Logger,
    private readonly metrics?: RelayMetrics,
    private readonly status?: RelayStatus,
  ) {
    this.slotBusyTimeoutMs = slotBusyTimeoutMs(config.slotBusyTimeoutMs, undefined);
    this.publication = new PublicationGuard({
      databaseUrl: config.databaseUrl,
      publication: config.publication,
      schema: config.outbox.schema,
      table: config.outbox.table,
      checkIntervalMs: config.publicationCheckMs,
    });
  }

  /**
   * A fresh producer per session, never reused after a failed one: the session
   * replays everything unconfirmed from the slot, and the new producer's epoch
   * fences whatever the old one still has in flight (see kafka-producer.ts).
   */
  private newProducer(transactionalId: string): RelayProducer {
    return createProducer(this.config.kafka, {
      transactionalId,
      requestTimeoutMs: this.config.kafkaSendTimeoutMs,
      maxRequestsInFlight: this.config.maxRequestsInFlight,
    });
  }

  get state(): RelayState {
    return this.current;
  }

  /** Records and encoded bytes buffered or sent and not yet acked, in the current session. */
  get inflight(): { records: number; bytes: number } {
    return { records: this.session?.inflightRecords ?? 0, bytes: this.session?.bufferedBytes ?? 0 };
  }

  /** Resolves after a graceful stop(); rejects with a non-retryable RelayError. */
  async run(): Promise<void> {
    const backoff = new SessionBackoff({
      baseMs: 200,
      maxMs: this.config.backoffMaxMs,
      healthyMs: Math.max(HEALTHY_SESSION_MS, this.config.backoffMaxMs),
    });
    /** When the slot was first found held by another connection, in an unbroken run of such failures. */
    let slotBusySince: number | null = null;
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
        let producer: RelayProducer | undefined;
        try {
          // One server per session (a multi-host URL's primary, found again after a failover):
          // the slot is inspected where it is then streamed.
          const databaseUrl = await resolvePgUrl(this.config.databaseUrl);
          const slot = await this.openSlot(databaseUrl);
          // PUBLICATION_DRIFT is retryable: the relay waits in backoff, saying so, until it is fixed.
          await this.publication.open(databaseUrl);
          producer = this.newProducer(slot.transactionalId);
          const session = new ReplicationSession(
            {
              ...this.config,
              databaseUrl,
              statusIntervalMs: statusIntervalFor(this.config.statusIntervalMs, slot.walSenderTimeoutMs),
            },
            slot.startLsn,
            producer,
            slot.checkpoint,
            this.log,
            this.metrics && sessionMetrics(this.metrics, this.status),
            this.config.delivery === 'exactly-once' ? () => this.readDelivered(slot.checkpoint) : undefined,
            this.publication,
          );
          this.session = session;
          if (this.stopping) break;
          const progress = setInterval(() => this.logProgress(session), 10_000);
          session.done.finally(() => clearInterval(progress)).catch(() => {});
          await session.start();
          if (this.stopping) break;
          this.transition('streaming', { from: formatLsn(slot.startLsn) });
          backoff.streaming();
          slotBusySince = null;
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
            await this.waitWhileSlotHeld();
            continue;
          }
          const needsHuman = BLOCKING_CODES.has(failure.code);
          let delayMs = backoff.next({ atCap: failure.code === 'KAFKA_TOPIC_REFUSED' });
          if (failure.code === 'SLOT_IN_USE') {
            // Usually a predecessor that Postgres has not yet seen die: a SIGKILLed
            // relay's walsender stays active until it notices the closed socket. Held
            // for longer, it is a second relay on the same slot; a human must resolve that.
            slotBusySince ??= Date.now();
            const leftMs = slotBusySince + this.slotBusyTimeoutMs - Date.now();
            if (leftMs <= 0) throw this.slotBusyTooLong(failure);
            delayMs = Math.min(delayMs, leftMs);
          } else {
            slotBusySince = null;
          }
          // A publication that does not publish the outbox (publication-check.ts) needs a human, but
          // the relay stays up saying so, checks again after each backoff, and streams once it is fixed.
          this.transition(needsHuman ? 'blocked' : 'backoff', { code: failure.code, error: failure.message, delayMs });
          await this.sleep(delayMs);
        } finally {
          this.publication.close();
          await this.session?.stop(0).catch(() => {});
          this.session = null;
          // Forced: a send still retrying must stop now, not after its retries run out.
          if (producer) await withTimeout(closeForcibly(producer), 5_000);
        }
      }
    } finally {
      await this.closeStandbyClient();
      this.transition('stopped');
    }
  }

  /**
   * A standby polls with one query on one kept connection, not a new
   * connection and the whole inspection twice a second: it returns once the
   * slot has no active walsender (or the query fails), and openSlot then
   * checks everything and takes the slot, or finds it taken again.
   */
  private async waitWhileSlotHeld(): Promise<void> {
    while (!this.stopping) {
      await this.sleep(this.config.standbyPollMs);
      if (this.stopping) return;
      try {
        this.standbyClient ??= await connectPgClient({ connectionString: this.config.databaseUrl });
        const held = await this.standbyClient.query<{ active_pid: number | null }>(
          'SELECT active_pid FROM pg_replication_slots WHERE slot_name = $1',
          [this.config.slot],
        );
        if (held.rows[0]?.active_pid == null) break;
      } catch {
        // Whatever broke, openSlot meets it too and reports it: back off there, not here.
        break;
      }
    }
    await this.closeStandbyClient();
  }

  private async closeStandbyClient(): Promise<void> {
    const client = this.standbyClient;
    this.standbyClient = null;
    await client?.end().catch(() => {});
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

  private lastProgress = { confirmed: -1n, acked: -1 };

  private logProgress(session: ReplicationSession): void {
    const confirmed = session.confirmedLsn;
    const acked = session.ackedRecords;
    if (confirmed === this.lastProgress.confirmed && acked === this.lastProgress.acked) return;
    this.lastProgress = { confirmed, acked };
    this.log.info({ confirmedLsn: formatLsn(confirmed), acked, inflight: session.inflightRecords }, 'relay progress');
  }

  private slotBusyTooLong(failure: RelayError): RelayError {
    return new RelayError(
      'SLOT_IN_USE',
      `another process still holds replication slot ${this.config.slot} after ${this.slotBusyTimeoutMs} ms (${failure.message}): stop that process, or give this relay its own RELAY_SLOT`,
      { retryable: false, cause: failure },
    );
  }

  /**
   * Where this session streams from, under which transactional id, with which
   * checkpoint key. A missing slot is created only when this relay has never
   * committed a checkpoint: otherwise events between its last checkpoint and a
   * new slot's start would be skipped without a word (a restored database, a
   * failover to a server without the slot, a slot dropped by hand).
   */
  private async openSlot(databaseUrl: string): Promise<OpenedSlot> {
    const { slot: slotName, kafka, checkpointTopic } = this.config;
    const slot = await withPgClient(databaseUrl, (client) =>
      inspectSlot(client, { slot: slotName, publication: this.config.publication, outbox: this.config.outbox }),
    );
    this.slotBusyTimeoutMs = slotBusyTimeoutMs(this.config.slotBusyTimeoutMs, slot.walSenderTimeoutMs);
    const failover = failoverWanted(this.config.slotFailover, slot.serverVersionNum);
    if (this.config.slotFailover && !failover && !this.toldNoFailoverSlots) {
      this.toldNoFailoverSlots = true;
      this.log.info(
        { slot: slotName, serverVersionNum: slot.serverVersionNum },
        noFailoverSlotsNote(slot.serverVersionNum),
      );
    }
    const transactionalId =
      this.config.transactionalId ?? `walnut-relay.${slot.systemIdentifier}.${slot.database}.${slotName}`;
    const checkpoint = {
      topic: checkpointTopic,
      key: Buffer.from(transactionalId, 'utf8'),
      slot: slotName,
      database: slot.database,
      systemIdentifier: slot.systemIdentifier,
    };
    switch (slot.status) {
      case 'busy': {
        const client = slot.client ? ` (client ${slot.client})` : '';
        throw new RelayError('SLOT_IN_USE', `slot ${slotName} is held by backend pid ${slot.activePid}${client}`, {
          retryable: true,
        });
      }
      case 'missing': {
        const last = await readCheckpoint(kafka, checkpointTopic, checkpoint.key);
        if (last) {
          this.refuseSharedTransactionalId(last, checkpoint);
          throw slotMissing(slotName, last);
        }
        await ensureCheckpointTopic(kafka, checkpointTopic);
        const { startLsn } = await withPgClient(databaseUrl, (client) =>
          createPgoutputSlot(client, slotName, { failover }),
        );
        this.log.info({ slot: slotName, at: formatLsn(startLsn), failover }, 'created replication slot (first start)');
        return { startLsn, transactionalId, checkpoint, walSenderTimeoutMs: slot.walSenderTimeoutMs };
      }
      case 'ready':
        // Before this session's producer fences the id: a relay sharing it with another slot stops
        // here, without knocking the other one's producer out first.
        if (this.config.transactionalId) {
          const last = await readCheckpoint(kafka, checkpointTopic, checkpoint.key);
          if (last) this.refuseSharedTransactionalId(last, checkpoint);
        }
        if (slot.failover !== null && slot.failover !== this.config.slotFailover) {
          await this.alignSlotFailover(slotName, this.config.slotFailover);
        }
        await ensureCheckpointTopic(kafka, checkpointTopic);
        return {
          startLsn: slot.confirmedFlushLsn,
          transactionalId,
          checkpoint,
          walSenderTimeoutMs: slot.walSenderTimeoutMs,
        };
      default: {
        const unknown: never = slot;
        throw new Error(`unknown slot state ${JSON.stringify(unknown)}`);
      }
    }
  }

  /**
   * Makes an existing slot's failover what RELAY_SLOT_FAILOVER says, before
   * this session streams from it: the slot was free a moment ago, and Postgres
   * refuses ALTER_REPLICATION_SLOT only while a walsender holds it. If another
   * relay took it in between, say how to do it by hand and stream anyway: the
   * slot works either way, it just does (or does not) follow a failover.
   */
  private async alignSlotFailover(slotName: string, failover: boolean): Promise<void> {
    try {
      await alterSlotFailover(this.config.databaseUrl, slotName, failover);
      this.log.info({ slot: slotName, failover }, `set failover ${failover} on the existing replication slot`);
    } catch (error) {
      this.log.warn(
        { slot: slotName, failover, err: error },
        `could not set failover ${failover} on replication slot ${slotName}: ${recreateForFailoverHint(slotName, failover)}`,
      );
    }
  }

  /** Where the last committed checkpoint of this relay says Kafka is (exactly-once). */
  private async readDelivered(checkpoint: CheckpointIdentity): Promise<RecordPosition | null> {
    const last = await readCheckpoint(this.config.kafka, checkpoint.topic, checkpoint.key);
    if (!last) return null;
    this.refuseSharedTransactionalId(last, checkpoint);
    // A checkpoint past the server's WAL belongs to another WAL history (a restore, a failover
    // to a standby that had not received it): skipping by it would drop new events that reuse
    // those LSNs. Nothing can tell what Kafka holds of this history, so a human decides.
    const current = await withPgClient(this.config.databaseUrl, async (client) => {
      const r = await client.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn');
      return parseLsn(r.rows[0]?.lsn ?? '0/0');
    });
    if (last.commitLsn > current) {
      throw new RelayError(
        'CHECKPOINT_MISMATCH',
        `the exactly-once checkpoint names LSN ${formatLsn(last.commitLsn)} (written ${last.relayedAt}), past this server's WAL at ${formatLsn(current)}: the database's WAL history is not the one the relay relayed from (a restore or a failover?). To start exactly-once afresh, set a new RELAY_TRANSACTIONAL_ID (events Kafka already holds from this slot may then be sent again)`,
        { retryable: false },
      );
    }
    return { commitLsn: last.commitLsn, seq: last.seq, ...(last.tx ? { tx: last.tx } : {}) };
  }

  /**
   * Two slots under one RELAY_TRANSACTIONAL_ID fence each other's producer at
   * every session start, and each one's checkpoints say nothing about the
   * other's slot: a human must give each its own id.
   */
  private refuseSharedTransactionalId(last: Checkpoint, checkpoint: CheckpointIdentity): void {
    if (!writtenForAnotherSlot(last, checkpoint)) return;
    const where = (c: { slot: string; database: string; systemIdentifier?: string | undefined }) =>
      `slot ${c.slot} of database ${c.database}${c.systemIdentifier ? ` on server ${c.systemIdentifier}` : ''}`;
    throw new RelayError(
      'CONFIG_INVALID',
      `RELAY_TRANSACTIONAL_ID ${checkpoint.key.toString('utf8')} is another slot's: its last checkpoint (written ${last.relayedAt}) is from ${where(last)}, and this relay streams ${where(checkpoint)}. Relays sharing a transactional id fence each other at every start. Give each slot its own RELAY_TRANSACTIONAL_ID (or unset it: the default is unique per server, database and slot)`,
      { retryable: false },
    );
  }

  /** Streaming with a live session: what /ready reports. */
  get ready(): boolean {
    return this.current === 'streaming' && this.session !== null;
  }

  private transition(next: RelayState, fields: Record<string, unknown> = {}): void {
    if (next === this.current && next !== 'backoff' && next !== 'blocked') return;
    this.current = next;
    const code = typeof fields.code === 'string' ? fields.code : undefined;
    this.status?.onState(next, code ? { code, message: String(fields.error ?? '') } : undefined);
    if (this.metrics) {
      for (const state of RELAY_STATES) this.metrics.state.set({ state }, state === next ? 1 : 0);
      const role = roleOf(next);
      if (role) for (const r of ['active', 'standby'] as const) this.metrics.role.set({ role: r }, r === role ? 1 : 0);
    }
    this.log.info({ state: next, ...fields }, `relay ${next}`);
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
