import { Redis } from 'ioredis';
import { toRedisFailure } from './redis-entries.ts';
import { nextMarker, type SlotMarker, type SlotMarkers } from './slot-marker.ts';

/** The marker as one Redis key, `walnut-relay:slot:<transactional id>` (slot-marker.ts). */
export function redisSlotMarkers(url: string, timeoutMs: number): SlotMarkers {
  const key = (identity: string) => `walnut-relay:slot:${identity}`;
  return {
    where: (identity) => `Redis key ${key(identity)}`,
    read: (identity) =>
      withRedis(url, timeoutMs, async (client) => {
        const text = await client.get(key(identity));
        return text ? (JSON.parse(text) as SlotMarker) : null;
      }),
    write: (identity, facts) =>
      withRedis(url, timeoutMs, async (client) => {
        const before = await client.get(key(identity));
        const marker = nextMarker(before ? (JSON.parse(before) as SlotMarker) : null, facts);
        await client.set(key(identity), JSON.stringify(marker));
      }),
  };
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
