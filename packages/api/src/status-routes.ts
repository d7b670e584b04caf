import { sql } from 'drizzle-orm';
import type { NodePgDatabase } from 'drizzle-orm/node-postgres';
import { Hono } from 'hono';
import { z } from 'zod';
import { ApiError } from './errors.ts';
import { validParam } from './validate.ts';

interface StatusRow extends Record<string, unknown> {
  created_at: string;
  applied_at: string | null;
  published: boolean | null;
}

/**
 * `published` is derived, never written by the relay: a request is published
 * once the slot's confirmed_flush_lsn (which the relay moves only past records
 * Kafka acked) reaches an upper bound of the request's commit LSN. The bound is
 * the WAL insert position read the first time anyone asks: the request row is
 * visible, so its commit record is already behind that position.
 */
export function statusRoutes(db: NodePgDatabase, slot: string) {
  return new Hono().get('/:request_id', validParam(z.object({ request_id: z.uuid() })), async (c) => {
    const { request_id } = c.req.valid('param');
    const result = await db.execute<StatusRow>(sql`
      WITH bound AS (
        UPDATE requests SET lsn_upper_bound = pg_current_wal_insert_lsn()
         WHERE request_id = ${request_id} AND lsn_upper_bound IS NULL AND applied_at IS NULL
        RETURNING lsn_upper_bound
      )
      SELECT to_json(r.created_at) #>> '{}' AS created_at, to_json(r.applied_at) #>> '{}' AS applied_at,
             (SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = ${slot})
               >= COALESCE(r.lsn_upper_bound, (SELECT lsn_upper_bound FROM bound)) AS published
        FROM requests r
       WHERE r.request_id = ${request_id}`);
    const row = result.rows[0];
    if (!row) throw new ApiError(404, 'NOT_FOUND', `no request ${request_id}`);
    const status = row.applied_at ? 'applied' : row.published ? 'published' : 'pending';
    return c.json({ request_id, status, created_at: row.created_at, applied_at: row.applied_at });
  });
}
