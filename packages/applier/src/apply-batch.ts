import { APPLIED_CHANNEL, APPLIED_NOTIFY_CHUNK } from '@walnut/schema';
import { sql } from 'drizzle-orm';
import type { NodePgDatabase } from 'drizzle-orm/node-postgres';
import { type DecodedKvEvent, newestPerKey } from './kv-message.ts';

/** Longest wait for the writing transactions to become visible; see migrations 0004 and 0009. */
export const VISIBILITY_WAIT_MAX_MS = 1_000;

export interface BatchResult {
  /** Requests marked applied by this batch. */
  marked: number;
  /** Time spent waiting for the writing transactions to become visible to new snapshots. */
  visibilityWaitMs: number;
}

/**
 * Applies a batch in one statement, walnut.apply_kv_batch (migration 0004, as 0009 rewrote it),
 * which is its own transaction: the version-guarded upsert into `kvs`, then
 * marking the requests whose every key now holds their commit's version, with
 * a NOTIFY of the marked ids for the API's waiters. The guard makes it
 * idempotent: a replayed, duplicated or reordered event never overwrites a
 * newer value. The SQL and the reasoning about concurrent appliers are in the
 * migration.
 *
 * A commit reaches the relay, Kafka and this applier a moment before new
 * snapshots see it (the committing backend leaves the proc array after its
 * WAL flush); marking its requests then would miss them for good. So the
 * events' transaction ids (walnut-xid) go along, and the function first waits
 * until they are visible: a millisecond or two under load, nothing otherwise.
 *
 * A request may span several keys (a batch write), hence several partitions and
 * applier batches. Every event of a request shares the commit LSN, the high
 * bits of the version, so `commit_version` (version with the sequence zeroed)
 * is the bar each of its keys must reach.
 */
export async function applyBatch(db: NodePgDatabase, events: readonly DecodedKvEvent[]): Promise<BatchResult> {
  if (events.length === 0) return { marked: 0, visibilityWaitMs: 0 };
  const rows = newestPerKey(events).map(({ event, version }) =>
    event.op === 'set'
      ? { key: event.key, value: event.value, version: version.toString(), deleted: false }
      : { key: event.key, version: version.toString(), deleted: true },
  );
  const commitVersions = new Map<string, string>();
  for (const { event, version } of events) commitVersions.set(event.request_id, ((version >> 32n) << 32n).toString());
  const requestRows = [...commitVersions].map(([request_id, commit_version]) => ({ request_id, commit_version }));
  const xids = `{${[...new Set(events.flatMap((e) => (e.xid === undefined ? [] : [e.xid])))].join(',')}}`;
  const result = await db.execute<{ marked_requests: number; visibility_wait_ms: number }>(sql`
    SELECT marked_requests, visibility_wait_ms
      FROM walnut.apply_kv_batch(${JSON.stringify(rows)}::jsonb, ${JSON.stringify(requestRows)}::jsonb,
                                 ${xids}::bigint[], ${VISIBILITY_WAIT_MAX_MS},
                                 ${APPLIED_CHANNEL}, ${APPLIED_NOTIFY_CHUNK})`);
  const row = result.rows[0];
  return {
    marked: row?.marked_requests ?? 0,
    visibilityWaitMs: row?.visibility_wait_ms ?? 0,
  };
}
