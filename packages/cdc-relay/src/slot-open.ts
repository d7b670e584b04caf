import { formatLsn, type Lsn } from '@walnut/schema';
import type { Logger } from 'pino';
import type { Checkpoint, CheckpointIdentity } from './checkpoint/checkpoint.ts';
import { ensureCheckpointTopic, readCheckpoint } from './checkpoint/checkpoint-topic.ts';
import { refuseSharedTransactionalId } from './checkpoint/last-checkpoint.ts';
import type { RelayConfig } from './config.ts';
import { RelayError } from './errors.ts';
import { withPgClient } from './pg-client.ts';
import { inspectSlot, slotBusyTimeoutMs } from './slot.ts';
import { alterSlotFailover, failoverWanted, noFailoverSlotsNote, recreateForFailoverHint } from './slot-failover.ts';
import { slotMarkers } from './publish/sink-slot-markers.ts';
import { markedSlotMissing, type SlotMarkers } from './publish/slot-marker.ts';
import { createPgoutputSlot } from './slot-lifecycle.ts';

/** What a session needs from its slot. */
export interface OpenedSlot {
  startLsn: Lsn;
  transactionalId: string;
  checkpoint: CheckpointIdentity;
  /** The server's wal_sender_timeout; 0 when disabled. */
  walSenderTimeoutMs: number;
}

const STANDBY_SLOT_NOTE =
  "the relay streams from a hot standby: its slot is the standby's own, so it cannot be a failover slot (Postgres syncs only a primary's slots). The slot survives the standby's promotion; if another server becomes the primary instead, point DATABASE_URL at a server that holds the slot, or the relay stops with SLOT_MISSING (docs/relay.md, Streaming from a standby)";

function slotMissing(slot: string, last: Checkpoint): RelayError {
  return new RelayError(
    'SLOT_MISSING',
    `replication slot ${slot} is gone, but this relay has relayed from it before: Kafka had acked everything up to at least the transaction that committed at LSN ${formatLsn(last.commitLsn)} (its event #${last.seq}, checkpointed ${last.relayedAt}). Events committed after that and before a new slot exists will never be relayed. To accept that gap and start from now, run: walnut-relay slot create --slot ${slot} (then re-publish the gap from the outbox table, if it still holds it, with walnut-relay replay --since a time safely before ${last.relayedAt}: duplicates are harmless, a gap is not; or drop nothing and run walnut-relay snapshot --slot ${slot} instead, which makes the slot and re-publishes every row the outbox holds before streaming on). On Postgres 17+ a failover slot (RELAY_SLOT_FAILOVER, docs/relay.md) keeps the slot through a primary failover`,
    { retryable: false },
  );
}

/**
 * Takes the relay's slot for each session: inspects it where the session will
 * stream, creates it on the relay's first start, and remembers across
 * sessions what the server said (its wal_sender_timeout, whether it knows
 * failover slots).
 */
export class SlotOpener {
  /** How long a held slot is waited for; see RELAY_SLOT_BUSY_TIMEOUT_MS. Refined once the server's setting is known. */
  private busyTimeoutMs: number;
  /** Said once per process: the server predates failover slots (Postgres 14-16), or is a standby. */
  private toldNoFailoverSlots = false;
  /** Where a sink without Kafka's checkpoints records that this relay has streamed (slot-marker.ts). */
  private markers: Promise<SlotMarkers | undefined> | undefined;

  constructor(
    private readonly config: RelayConfig,
    private readonly log: Logger,
  ) {
    this.busyTimeoutMs = slotBusyTimeoutMs(config.slotBusyTimeoutMs, undefined);
  }

  get slotBusyTimeoutMs(): number {
    return this.busyTimeoutMs;
  }

  /**
   * Where this session streams from, under which transactional id, with which
   * checkpoint key. A missing slot is created only when this relay has never
   * committed a checkpoint: otherwise events between its last checkpoint and a
   * new slot's start would be skipped without a word (a restored database, a
   * failover to a server without the slot, a slot dropped by hand).
   */
  async open(databaseUrl: string): Promise<OpenedSlot> {
    const { slot: slotName, kafka, checkpointTopic } = this.config;
    const withKafka = this.config.sink.kind === 'kafka';
    const slot = await withPgClient(databaseUrl, (client) =>
      inspectSlot(client, { slot: slotName, publication: this.config.publication, outbox: this.config.outbox }),
    );
    this.busyTimeoutMs = slotBusyTimeoutMs(this.config.slotBusyTimeoutMs, slot.walSenderTimeoutMs);
    const failover = failoverWanted(this.config.slotFailover, slot.serverVersionNum) && !slot.inRecovery;
    if (this.config.slotFailover && !failover && !this.toldNoFailoverSlots) {
      this.toldNoFailoverSlots = true;
      this.log.info(
        { slot: slotName, serverVersionNum: slot.serverVersionNum, standby: slot.inRecovery },
        slot.inRecovery ? STANDBY_SLOT_NOTE : noFailoverSlotsNote(slot.serverVersionNum),
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
        // What tells a first start from a lost slot: the last checkpoint on Kafka, the slot marker on Redis and NATS.
        if (withKafka) {
          const last = await readCheckpoint(kafka, checkpointTopic, checkpoint.key);
          if (last) {
            refuseSharedTransactionalId(last, checkpoint);
            throw slotMissing(slotName, last);
          }
          await ensureCheckpointTopic(kafka, checkpointTopic);
        }
        const markers = await this.sinkMarkers();
        const marker = await markers?.read(transactionalId);
        if (marker) throw markedSlotMissing(slotName, markers?.where(transactionalId) ?? '', marker);
        const { startLsn } = await withPgClient(databaseUrl, (client) =>
          createPgoutputSlot(client, slotName, { failover }),
        );
        this.log.info({ slot: slotName, at: formatLsn(startLsn), failover }, 'created replication slot (first start)');
        await this.markSession(transactionalId, checkpoint);
        return { startLsn, transactionalId, checkpoint, walSenderTimeoutMs: slot.walSenderTimeoutMs };
      }
      case 'ready':
        // Before this session's producer fences the id: a relay sharing it with another slot stops
        // here, without knocking the other one's producer out first.
        if (withKafka && this.config.transactionalId) {
          const last = await readCheckpoint(kafka, checkpointTopic, checkpoint.key);
          if (last) refuseSharedTransactionalId(last, checkpoint);
        }
        // A standby's own slot cannot be a failover slot (nor be altered into one); leave it be.
        if (!slot.inRecovery && slot.failover !== null && slot.failover !== this.config.slotFailover) {
          await this.alignSlotFailover(slotName, this.config.slotFailover);
        }
        if (withKafka) await ensureCheckpointTopic(kafka, checkpointTopic);
        await this.markSession(transactionalId, checkpoint);
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
   * Redis and NATS keep no checkpoints: a marker per slot says this relay has streamed
   * from it, so that a later missing slot is SLOT_MISSING, not a first start.
   * Written at every session, so a marker whose first write failed (Redis was
   * down just after the slot was made) is written by the next session.
   */
  private async markSession(transactionalId: string, checkpoint: CheckpointIdentity): Promise<void> {
    await (await this.sinkMarkers())?.write(transactionalId, checkpoint);
  }

  private sinkMarkers(): Promise<SlotMarkers | undefined> {
    this.markers ??= slotMarkers(this.config);
    return this.markers;
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
}
