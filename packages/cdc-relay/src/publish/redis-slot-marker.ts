import { Redis } from 'ioredis';
import { RelayError } from '../errors.ts';
import { toRedisFailure } from './redis-entries.ts';

/**
 * What tells a Redis relay's first start from a lost slot. Kafka relays read
 * their last checkpoint for that; Redis streams carry none, so the relay keeps
 * one small key per slot identity (`walnut-relay:slot:<transactional id>`),
 * written at every session start. A missing slot while the key exists means
 * the slot was lost (a failover to a server without it, a restore, a drop by
 * hand): creating a new one from "now" would skip every event in between.
 */
export interface SlotMarker {
  slot: string;
  database: string;
  systemIdentifier: string;
  /** When a session of this slot first started, and most recently (ISO 8601). */
  firstSessionAt: string;
  lastSessionAt: string;
}

export function slotMarkerKey(identity: string): string {
  return `walnut-relay:slot:${identity}`;
}

async function withRedis<T>(url: string, timeoutMs: number, use: (client: Redis) => Promise<T>): Promise<T> {
  const client = new Redis(url, {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    connectTimeout: timeoutMs,
  });
  client.on('error', () => {});
  try {
    await client.connect();
    return await use(client);
  } catch (cause) {
    throw toRedisFailure(cause, 'the slot marker');
  } finally {
    client.disconnect();
  }
}

export function readSlotMarker(url: string, identity: string, timeoutMs: number): Promise<SlotMarker | null> {
  return withRedis(url, timeoutMs, async (client) => {
    const text = await client.get(slotMarkerKey(identity));
    return text ? (JSON.parse(text) as SlotMarker) : null;
  });
}

/** Records this session's start; keeps the first start's time. */
export function writeSlotMarker(
  url: string,
  identity: string,
  facts: Pick<SlotMarker, 'slot' | 'database' | 'systemIdentifier'>,
  timeoutMs: number,
): Promise<void> {
  return withRedis(url, timeoutMs, async (client) => {
    const key = slotMarkerKey(identity);
    const now = new Date().toISOString();
    const before = await client.get(key);
    const first = before ? (JSON.parse(before) as SlotMarker).firstSessionAt : now;
    const marker: SlotMarker = {
      slot: facts.slot,
      database: facts.database,
      systemIdentifier: facts.systemIdentifier,
      firstSessionAt: first,
      lastSessionAt: now,
    };
    await client.set(key, JSON.stringify(marker));
  });
}

export function redisSlotMissing(slot: string, identity: string, marker: SlotMarker): RelayError {
  return new RelayError(
    'SLOT_MISSING',
    `replication slot ${slot} is gone, but this relay has streamed from it to Redis before (sessions from ${marker.firstSessionAt} to ${marker.lastSessionAt}, Redis key ${slotMarkerKey(identity)}): events committed between its last confirmation and a new slot would never be relayed. To accept that gap and start from now, run: walnut-relay slot create --slot ${slot}, then re-publish the gap from the outbox table yourself (replay is Kafka's: docs/relay.md, Redis Streams). On Postgres 17+ a failover slot (RELAY_SLOT_FAILOVER) keeps the slot through a primary failover`,
    { retryable: false },
  );
}
