import { createRoute, type OpenAPIHono, z } from '@hono/zod-openapi';
import { sql } from 'drizzle-orm';
import type { NodePgDatabase } from 'drizzle-orm/node-postgres';
import type { AppEnv } from './app-env.ts';
import { SECURED } from './auth.ts';
import { ApiError } from './errors.ts';
import { errors, requestId, status } from './schemas.ts';

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
export function registerStatus(app: OpenAPIHono<AppEnv>, db: NodePgDatabase, slot: string): void {
  app.openapi(
    createRoute({
      method: 'get',
      path: '/status/{request_id}',
      summary: 'Follow a write: pending → published (Kafka acked) → applied (in kvs)',
      security: SECURED,
      request: { params: z.object({ request_id: requestId.openapi({ param: { name: 'request_id', in: 'path' } }) }) },
      responses: {
        200: { description: 'Where the request is', content: { 'application/json': { schema: status } } },
        ...errors(400, 401, 404),
      },
    }),
    async (c) => {
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
      const state = row.applied_at
        ? ('applied' as const)
        : row.published
          ? ('published' as const)
          : ('pending' as const);
      return c.json({ request_id, status: state, created_at: row.created_at, applied_at: row.applied_at }, 200);
    },
  );
}
