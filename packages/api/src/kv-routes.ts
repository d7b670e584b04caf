import { KV_AGGREGATE_TYPE, kvKey, kvs, outbox, requests } from '@walnut/schema';
import { eq } from 'drizzle-orm';
import type { NodePgDatabase } from 'drizzle-orm/node-postgres';
import { Hono } from 'hono';
import { z } from 'zod';
import { ApiError } from './errors.ts';
import { validJson, validParam } from './validate.ts';

const putBody = z.strictObject({ key: kvKey, value: z.json() });

/**
 * Writes never touch `kvs` or Kafka: they insert an outbox row (and a request
 * row for /status) in one transaction, and the relay and applier do the rest.
 */
export function kvRoutes(db: NodePgDatabase) {
  return new Hono()
    .post('/', validJson(putBody), async (c) => {
      const { key, value } = c.req.valid('json');
      const requestId = crypto.randomUUID();
      await db.transaction(async (tx) => {
        await tx.insert(outbox).values({
          id: requestId,
          aggregatetype: KV_AGGREGATE_TYPE,
          aggregateid: key,
          type: 'kv.set',
          payload: { op: 'set', key, value, request_id: requestId },
        });
        await tx.insert(requests).values({ requestId, key });
      });
      return c.json({ status: 'accepted', request_id: requestId }, 202);
    })
    .get('/:key', validParam(z.object({ key: kvKey })), async (c) => {
      const { key } = c.req.valid('param');
      const [row] = await db.select().from(kvs).where(eq(kvs.key, key));
      if (!row) throw new ApiError(404, 'NOT_FOUND', `no value for key ${JSON.stringify(key)}`);
      return c.json({ key: row.key, value: row.value, version: row.version });
    });
}
