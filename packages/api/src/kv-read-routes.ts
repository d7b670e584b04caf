import { createRoute, type OpenAPIHono, z } from '@hono/zod-openapi';
import { KEY_CHARS, KEY_MAX_LENGTH, kvs } from '@walnut/schema';
import { and, asc, eq, gt, isNull, like } from 'drizzle-orm';
import type { NodePgDatabase } from 'drizzle-orm/node-postgres';
import type { AppEnv } from './app-env.ts';
import type { AppliedWaiters } from './applied-waiters.ts';
import { SECURED } from './auth.ts';
import { ApiError } from './errors.ts';
import { errors, key, keyParam, kvItem, kvList, requestId } from './schemas.ts';

const LIST_MAX_LIMIT = 1_000;

/** The cursor is the last key of the page, base64url'd so clients treat it as opaque. */
const cursor = z
  .string()
  .max(2 * KEY_MAX_LENGTH)
  .transform((text, ctx) => {
    const decoded = Buffer.from(text, 'base64url').toString('utf8');
    if (!key.safeParse(decoded).success) {
      ctx.addIssue({ code: 'custom', message: 'is not a cursor this API returned' });
      return z.NEVER;
    }
    return decoded;
  })
  .openapi({ type: 'string', description: 'next_cursor of the previous page' });

export function registerKvReads(
  app: OpenAPIHono<AppEnv>,
  db: NodePgDatabase,
  waiters: AppliedWaiters,
  readAfterTimeoutMs: number,
): void {
  app.openapi(
    createRoute({
      method: 'get',
      path: '/kv/{key}',
      summary: 'Read a key',
      description:
        'With `after=<request_id>`, first waits (at most `timeout_ms`, capped by API_READ_AFTER_TIMEOUT_MS) ' +
        'until that request is applied, then reads: read-your-writes. A wait that runs out is a 504 ' +
        '`NOT_APPLIED_YET`; an unknown request id is a 404 `REQUEST_NOT_FOUND`.',
      security: SECURED,
      request: {
        params: keyParam,
        query: z.object({
          after: requestId.optional(),
          timeout_ms: z.coerce.number().int().min(0).max(readAfterTimeoutMs).optional(),
        }),
      },
      responses: {
        200: { description: 'The current value', content: { 'application/json': { schema: kvItem } } },
        ...errors(400, 401, 404, 504),
      },
    }),
    async (c) => {
      const { key: k } = c.req.valid('param');
      const { after, timeout_ms } = c.req.valid('query');
      if (after !== undefined) {
        const waitMs = timeout_ms ?? readAfterTimeoutMs;
        const outcome = await waiters.waitApplied(after, waitMs);
        if (outcome === 'unknown') throw new ApiError(404, 'REQUEST_NOT_FOUND', `no request ${after}`);
        if (outcome === 'timeout') {
          throw new ApiError(504, 'NOT_APPLIED_YET', `request ${after} was not applied within ${waitMs} ms`, {
            request_id: after,
            waited_ms: waitMs,
          });
        }
      }
      const [row] = await db
        .select({ key: kvs.key, value: kvs.value, version: kvs.version })
        .from(kvs)
        .where(and(eq(kvs.key, k), isNull(kvs.deletedAt)));
      if (!row) throw new ApiError(404, 'NOT_FOUND', `no value for key ${JSON.stringify(k)}`);
      return c.json(row, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/kv',
      summary: 'List keys in key order',
      description:
        'Keyset pagination: the cursor is the last key returned, so pages stay stable while keys are ' +
        'written (a key inserted behind the cursor is not seen, none is seen twice). Keys sort bytewise.',
      security: SECURED,
      request: {
        query: z.object({
          prefix: z
            .string()
            .max(KEY_MAX_LENGTH)
            .regex(KEY_CHARS, 'may only contain characters a key may contain')
            .optional(),
          limit: z.coerce.number().int().min(1).max(LIST_MAX_LIMIT).default(100),
          cursor: cursor.optional(),
        }),
      },
      responses: {
        200: { description: 'A page of keys', content: { 'application/json': { schema: kvList } } },
        ...errors(400, 401),
      },
    }),
    async (c) => {
      const { prefix, limit, cursor: after } = c.req.valid('query');
      const rows = await db
        .select({ key: kvs.key, value: kvs.value, version: kvs.version })
        .from(kvs)
        .where(
          and(
            isNull(kvs.deletedAt),
            // `_` is a key character and a LIKE wildcard; kvs.key is COLLATE "C", so
            // the escaped prefix match is an index range scan.
            prefix ? like(kvs.key, `${prefix.replaceAll('_', '\\_')}%`) : undefined,
            after === undefined ? undefined : gt(kvs.key, after),
          ),
        )
        .orderBy(asc(kvs.key))
        .limit(limit + 1);
      const page = rows.slice(0, limit);
      const last = page.at(-1);
      const more = rows.length > limit && last !== undefined;
      return c.json({ items: page, next_cursor: more ? Buffer.from(last.key).toString('base64url') : null }, 200);
    },
  );
}
