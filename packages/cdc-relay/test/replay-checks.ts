import { eventVersion, RELAY_HEADERS } from '@walnut/schema';
import { countDelivery, type TopicRecord } from '@walnut/stack';
import * as assert from 'uvu/assert';

/** How often each outbox row id went out in the replay (or snapshot) named `replayId`. */
export function replayRecords(records: readonly TopicRecord[], replayId: string): Map<string, number> {
  return eventIdCounts(records.filter((r) => r.headers[RELAY_HEADERS.replay] === replayId));
}

/** How often each outbox row id went out from the slot: records without a walnut-replay header. */
export function liveRecords(records: readonly TopicRecord[]): Map<string, number> {
  return eventIdCounts(records.filter((r) => r.headers[RELAY_HEADERS.replay] === undefined));
}

function eventIdCounts(records: readonly TopicRecord[]): Map<string, number> {
  return countDelivery(
    [],
    records.map((r) => r.headers[RELAY_HEADERS.eventId]),
  ).counts;
}

export interface KvRow {
  key: string;
  value: unknown;
  version: string;
  updated_at: string;
}

/**
 * `kvs` holds, for every key, the newest event the live records carry (by
 * commit LSN and sequence): replayed records, whatever their order on the
 * topic, changed nothing.
 */
export function kvsIsWhatLiveRecordsMake(kvs: readonly KvRow[], records: readonly TopicRecord[]): void {
  const newest = new Map<string, { version: bigint; event: { op: string; value?: unknown } }>();
  for (const r of records) {
    if (r.headers[RELAY_HEADERS.replay] !== undefined || r.value === null) continue;
    const event = JSON.parse(r.value) as { op: string; key: string; value?: unknown };
    const version = eventVersion(r.headers[RELAY_HEADERS.commitLsn] as string, Number(r.headers[RELAY_HEADERS.seq]));
    const seen = newest.get(event.key);
    if (!seen || seen.version < version) newest.set(event.key, { version, event });
  }
  assert.equal(kvs.map((row) => row.key).sort(), [...newest.keys()].sort(), 'kvs holds the keys the live stream wrote');
  for (const row of kvs) {
    const expected = newest.get(row.key);
    assert.is(row.version, expected?.version.toString(), `${row.key}: version of its newest live event`);
    assert.equal(row.value, expected?.event.op === 'set' ? expected.event.value : null, `${row.key}: its value`);
  }
}
