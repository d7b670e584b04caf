import { RelayError } from '../errors.ts';

/**
 * What tells a first start from a lost slot where the sink keeps no Kafka
 * checkpoint (Redis, NATS). Kafka relays read their last checkpoint for that;
 * the other sinks keep one small record per slot identity (the transactional
 * id: server, database and slot) in the sink itself, written at every session
 * start. A missing slot while the record exists means the slot was lost (a
 * failover to a server without it, a restore, a drop by hand): a new slot
 * from "now" would skip every event in between, so the relay stops with
 * SLOT_MISSING instead.
 */
export interface SlotMarker {
  slot: string;
  database: string;
  systemIdentifier: string;
  /** When a session of this slot first started, and most recently (ISO 8601). */
  firstSessionAt: string;
  lastSessionAt: string;
}

export type SlotFacts = Pick<SlotMarker, 'slot' | 'database' | 'systemIdentifier'>;

export interface SlotMarkers {
  /** Where a person finds the record, for the SLOT_MISSING message. */
  where(identity: string): string;
  read(identity: string): Promise<SlotMarker | null>;
  /** Stores this session's start, keeping the first one's time. */
  write(identity: string, facts: SlotFacts): Promise<void>;
}

export function nextMarker(before: SlotMarker | null, facts: SlotFacts): SlotMarker {
  const now = new Date().toISOString();
  return {
    slot: facts.slot,
    database: facts.database,
    systemIdentifier: facts.systemIdentifier,
    firstSessionAt: before?.firstSessionAt ?? now,
    lastSessionAt: now,
  };
}

export function markedSlotMissing(slot: string, where: string, marker: SlotMarker): RelayError {
  return new RelayError(
    'SLOT_MISSING',
    `replication slot ${slot} is gone, but this relay has streamed from it before (sessions from ${marker.firstSessionAt} to ${marker.lastSessionAt}; ${where}): events committed between its last confirmation and a new slot would never be relayed. To accept that gap and start from now, run: walnut-relay slot create --slot ${slot}, then re-publish the gap from the outbox table yourself (replay is Kafka's: docs/relay.md, Redis Streams / NATS JetStream). On Postgres 17+ a failover slot (RELAY_SLOT_FAILOVER) keeps the slot through a primary failover`,
    { retryable: false },
  );
}
