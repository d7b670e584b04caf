import { formatLsn, LSN_TEXT, type Lsn, parseLsn } from '@walnut/schema';
import * as z from 'zod';
import { type KafkaRecord, kafkaRecord, type RecordPosition } from '../kafka-record.ts';

/**
 * The relay's own record of how far it got, kept in Kafka beside the events:
 * produce requests carry one, keyed by the relay's transactional id, in a
 * compacted topic. It names the last record Kafka had acked before that
 * request, so it never claims more than is really in Kafka. A relay whose slot
 * is gone reads it to say what it had relayed instead of silently starting
 * again from "now".
 */
export interface Checkpoint {
  slot: string;
  database: string;
  /** The server's system identifier (pg_control_system()); absent in records of older relays. */
  systemIdentifier?: string;
  /** Commit LSN of the last relayed event's transaction, and the event's index in it. */
  commitLsn: Lsn;
  seq: number;
  /**
   * Which transaction committed at commitLsn: an LSN alone does not say, as a
   * restored or failed-over server reuses LSNs for other transactions
   * (checkpoint-skip.ts). Absent in records of older relays.
   */
  tx?: TxIdentity;
  relayedAt: string;
}

/** xid and commit time of a transaction; xid 0 (never a real one) for a non-transactional message. */
export interface TxIdentity {
  xid: number;
  commitTimeMicros: bigint;
}

const checkpointJson = z.object({
  slot: z.string(),
  database: z.string(),
  system_identifier: z.string().optional(),
  commit_lsn: z.string().regex(LSN_TEXT),
  seq: z.number().int().min(0),
  xid: z.number().int().min(0).optional(),
  commit_time_us: z.string().regex(/^\d+$/).optional(),
  relayed_at: z.string(),
});

export interface CheckpointIdentity {
  topic: string;
  /** The key: the relay's transactional id, unique per slot. */
  key: Buffer;
  slot: string;
  database: string;
  systemIdentifier: string;
}

export function checkpointRecord(identity: CheckpointIdentity, position: RecordPosition): KafkaRecord {
  const value = Buffer.from(
    JSON.stringify({
      slot: identity.slot,
      database: identity.database,
      system_identifier: identity.systemIdentifier,
      commit_lsn: formatLsn(position.commitLsn),
      seq: position.seq,
      ...(position.tx ? { xid: position.tx.xid, commit_time_us: String(position.tx.commitTimeMicros) } : {}),
      relayed_at: new Date().toISOString(),
    }),
  );
  return kafkaRecord(identity.topic, identity.key, value, new Map(), 'checkpoint', position);
}

/** null for a value this relay did not write (a malformed record is not a checkpoint). */
export function parseCheckpoint(value: Buffer | null): Checkpoint | null {
  if (!value) return null;
  let json: unknown;
  try {
    json = JSON.parse(value.toString('utf8'));
  } catch {
    return null;
  }
  const parsed = checkpointJson.safeParse(json);
  if (!parsed.success) return null;
  const { slot, database, system_identifier, commit_lsn, seq, xid, commit_time_us, relayed_at } = parsed.data;
  return {
    slot,
    database,
    ...(system_identifier !== undefined ? { systemIdentifier: system_identifier } : {}),
    // parseLsn reads both Postgres's form and the zero-padded one older relays wrote.
    commitLsn: parseLsn(commit_lsn),
    seq,
    ...(xid !== undefined && commit_time_us !== undefined
      ? { tx: { xid, commitTimeMicros: BigInt(commit_time_us) } }
      : {}),
    relayedAt: relayed_at,
  };
}

/**
 * Whether a checkpoint under this relay's key was written for another slot
 * (RELAY_TRANSACTIONAL_ID shared). Slot name, database and system identifier
 * survive a slot's drop and re-create and a restore from a backup, so those
 * still count as this slot; a record without a system identifier (an older
 * relay's) is compared by slot and database only.
 */
export function writtenForAnotherSlot(last: Checkpoint, identity: CheckpointIdentity): boolean {
  if (last.slot !== identity.slot || last.database !== identity.database) return true;
  return last.systemIdentifier !== undefined && last.systemIdentifier !== identity.systemIdentifier;
}
