import { createRoute, type OpenAPIHono } from '@hono/zod-openapi';
import { formatTraceparent } from '@walnut/schema';
import type { NodePgDatabase } from 'drizzle-orm/node-postgres';
import type { Context } from 'hono';
import type { AppEnv } from './app-env.ts';
import { SECURED } from './auth.ts';
import { commitWrite, fingerprint, type WriteOp } from './commit-write.ts';
import { accepted, errors, idempotencyHeaders, keyParam, type Limits, writeSchemas } from './schemas.ts';
import type { WriteBatcher } from './write-batcher.ts';

const acceptedResponse = {
  202: { description: 'Committed to the outbox', content: { 'application/json': { schema: accepted } } },
};
const writeErrors = errors(400, 401, 409, 413, 415, 422);

/**
 * Writes never touch `kvs` or Kafka: they commit outbox rows (and a request row
 * for /status) in one transaction, and the relay and applier do the rest.
 */
export function registerKvWrites(
  app: OpenAPIHono<AppEnv>,
  db: NodePgDatabase,
  batcher: WriteBatcher,
  limits: Limits,
): void {
  const { postBody, putBody, batchBody } = writeSchemas(limits);

  async function write(c: Context<AppEnv>, ops: WriteOp[], body: unknown) {
    const idempotencyKey = c.req.header('idempotency-key');
    const traceparent = formatTraceparent(c.get('trace'));
    // Idempotency-Key writes take their own transaction: a duplicate waits on
    // the key's row lock, and must not hold up the writes sharing a commit.
    if (idempotencyKey === undefined) {
      const requestId = await batcher.submit(ops, traceparent);
      return c.json({ status: 'accepted' as const, request_id: requestId }, 202);
    }
    const { requestId, replayed } = await commitWrite(db, ops, traceparent, {
      principal: c.get('principal'),
      key: idempotencyKey,
      fingerprint: fingerprint(c.req.method, c.req.path, body),
    });
    if (replayed) c.header('Idempotent-Replayed', 'true');
    return c.json({ status: 'accepted' as const, request_id: requestId }, 202);
  }

  const json = <T>(schema: T) => ({ content: { 'application/json': { schema } }, required: true });

  app.openapi(
    createRoute({
      method: 'post',
      path: '/kv',
      summary: 'Set a key',
      security: SECURED,
      request: { headers: idempotencyHeaders, body: json(postBody) },
      responses: { ...acceptedResponse, ...writeErrors },
    }),
    (c) => {
      const body = c.req.valid('json');
      return write(c, [{ op: 'set', key: body.key, value: body.value }], body);
    },
  );

  app.openapi(
    createRoute({
      method: 'put',
      path: '/kv/{key}',
      summary: 'Set a key',
      security: SECURED,
      request: { params: keyParam, headers: idempotencyHeaders, body: json(putBody) },
      responses: { ...acceptedResponse, ...writeErrors },
    }),
    (c) => {
      const { key } = c.req.valid('param');
      const body = c.req.valid('json');
      return write(c, [{ op: 'set', key, value: body.value }], body);
    },
  );

  app.openapi(
    createRoute({
      method: 'delete',
      path: '/kv/{key}',
      summary: 'Delete a key (a tombstone event; the key then reads 404)',
      security: SECURED,
      request: { params: keyParam, headers: idempotencyHeaders },
      responses: { ...acceptedResponse, ...errors(400, 401, 409) },
    }),
    (c) => {
      const { key } = c.req.valid('param');
      return write(c, [{ op: 'delete', key }], null);
    },
  );

  app.openapi(
    createRoute({
      method: 'post',
      path: '/kv/batch',
      summary: `Set and delete up to ${limits.maxBatchOps} keys in one transaction`,
      security: SECURED,
      request: { headers: idempotencyHeaders, body: json(batchBody) },
      responses: { ...acceptedResponse, ...writeErrors },
    }),
    (c) => {
      const body = c.req.valid('json');
      return write(c, body.ops, body);
    },
  );
}
