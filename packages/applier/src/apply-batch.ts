import { sql } from 'drizzle-orm';
import type { NodePgDatabase } from 'drizzle-orm/node-postgres';
import { type DecodedKvEvent, newestPerKey } from './kv-message.ts';

/**
 * Applies a batch in one transaction. The version guard makes it idempotent:
 * a replayed, duplicated or reordered event never overwrites a newer value.
 * Requests are marked applied in the same transaction, one statement per batch.
 */
export async function applyBatch(db: NodePgDatabase, events: readonly DecodedKvEvent[]): Promise<void> {
  if (events.length === 0) return;
  const rows = newestPerKey(events).map(({ event, version }) => ({
    key: event.key,
    value: event.value,
    version: version.toString(),
  }));
  const requestIds = events.map(({ event }) => event.request_id);
  await db.transaction(async (tx) => {
    await tx.execute(sql`
      INSERT INTO kvs (key, value, version, updated_at)
      SELECT r.key, r.value, r.version, now()
        FROM jsonb_to_recordset(${JSON.stringify(rows)}::jsonb) AS r(key text, value jsonb, version numeric)
      ON CONFLICT (key) DO UPDATE
        SET value = excluded.value, version = excluded.version, updated_at = excluded.updated_at
        WHERE kvs.version < excluded.version`);
    await tx.execute(sql`
      UPDATE requests SET applied_at = now()
       WHERE request_id = ANY(${`{${requestIds.join(',')}}`}::uuid[]) AND applied_at IS NULL`);
  });
}
