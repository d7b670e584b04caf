import { LSN_TEXT } from '@walnut/schema';
import { z } from 'zod';
import { type KafkaRecord, kafkaRecord, type RecordPosition } from './kafka-record.ts';

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
  /** Commit LSN of the last relayed event's transaction, and the event's index in it. */
  commitLsn: string;
  seq: number;
  relayedAt: string;
}

const checkpointJson = z.object({
  slot: z.string(),
  database: z.string(),
  commit_lsn: z.string().regex(LSN_TEXT),
  seq: z.number().int().min(0),
  relayed_at: z.string(),
});

export interface CheckpointIdentity {
  topic: string;
  /** The key: the relay's transactional id, unique per slot. */
  key: Buffer;
  slot: string;
  database: string;
}

export function checkpointRecord(identity: CheckpointIdentity, position: RecordPosition): KafkaRecord {
  const value = Buffer.from(
    JSON.stringify({
      slot: identity.slot,
      database: identity.database,
      commit_lsn: position.commitLsn,
      seq: position.seq,
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
  const { slot, database, commit_lsn, seq, relayed_at } = parsed.data;
  return { slot, database, commitLsn: commit_lsn, seq, relayedAt: relayed_at };
}
