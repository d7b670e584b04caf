import { APPLIED_CHANNEL, APPLIED_NOTIFY_CHUNK } from '@walnut/schema';
import { sql } from 'drizzle-orm';
import type { NodePgDatabase } from 'drizzle-orm/node-postgres';
import { type DecodedKvEvent, newestPerKey } from './kv-message.ts';

export interface BatchResult {
  /** Rows written to kvs (events that beat the stored version). */
  upserted: number;
  /** Requests marked applied by this batch. */
  marked: number;
}

/**
 * Applies a batch in one transaction. The version guard makes it idempotent:
 * a replayed, duplicated or reordered event never overwrites a newer value. A
 * delete is an upsert too: the row stays as a tombstone with the delete's
 * version, so an older set arriving later loses to it.
 *
 * Requests are marked applied in the same transaction, with one statement per
 * batch however many messages it holds. A request may span several keys (a
 * batch write), hence several partitions and applier batches: it is applied once
 * every key it wrote holds its commit's version or a newer one. Every event of a
 * request shares the commit LSN, the high 32 bits-and-up of the version, so
 * `commit_version` (version with the sequence zeroed) is the bar for each key.
 * The marked ids are NOTIFYed, delivered at commit, for the API's waiters.
 */
export async function applyBatch(db: NodePgDatabase, events: readonly DecodedKvEvent[]): Promise<BatchResult> {
  if (events.length === 0) return { upserted: 0, marked: 0 };
  const rows = newestPerKey(events).map(({ event, version }) =>
    event.op === 'set'
      ? { key: event.key, value: event.value, version: version.toString(), deleted: false }
      : { key: event.key, version: version.toString(), deleted: true },
  );
  const commitVersions = new Map<string, string>();
  for (const { event, version } of events) commitVersions.set(event.request_id, ((version >> 32n) << 32n).toString());
  const requestRows = [...commitVersions].map(([request_id, commit_version]) => ({ request_id, commit_version }));
  const requestIds = `{${[...commitVersions.keys()].sort().join(',')}}`;

  return db.transaction(async (tx) => {
    const upsert = await tx.execute(sql`
      INSERT INTO kvs (key, value, version, updated_at, deleted_at)
      SELECT r.key, r.value, r.version, now(), CASE WHEN r.deleted THEN now() END
        FROM jsonb_to_recordset(${JSON.stringify(rows)}::jsonb)
          AS r(key text, value jsonb, version numeric, deleted boolean)
      ON CONFLICT (key) DO UPDATE
        SET value = excluded.value, version = excluded.version,
            updated_at = excluded.updated_at, deleted_at = excluded.deleted_at
        WHERE kvs.version < excluded.version`);
    // Two appliers committing the two halves of one batch write at once would each
    // miss the other's uncommitted half. Locking the request rows (in id order, so
    // no deadlock) serializes them, and in READ COMMITTED the next statement's fresh
    // snapshot sees the other's committed half.
    await tx.execute(sql`
      SELECT 1 FROM requests
       WHERE request_id = ANY(${requestIds}::uuid[]) AND applied_at IS NULL
       ORDER BY request_id FOR UPDATE`);
    const marked = await tx.execute<{ n: number }>(sql`
      WITH marked AS (
        UPDATE requests r SET applied_at = now()
          FROM jsonb_to_recordset(${JSON.stringify(requestRows)}::jsonb) AS b(request_id uuid, commit_version numeric)
         WHERE r.request_id = b.request_id AND r.applied_at IS NULL
           AND NOT EXISTS (
             SELECT 1 FROM unnest(r.keys) AS k(key) LEFT JOIN kvs ON kvs.key = k.key
              WHERE kvs.version IS NULL OR kvs.version < b.commit_version)
        RETURNING r.request_id
      ), chunks AS (
        SELECT request_id, (row_number() OVER () - 1) / ${APPLIED_NOTIFY_CHUNK} AS chunk FROM marked
      )
      SELECT count(*)::int AS n, pg_notify(${APPLIED_CHANNEL}, string_agg(request_id::text, ','))
        FROM chunks GROUP BY chunk`);
    return {
      upserted: upsert.rowCount ?? 0,
      marked: marked.rows.reduce((sum, row) => sum + row.n, 0),
    };
  });
}
