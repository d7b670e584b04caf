import { z } from '@hono/zod-openapi';
import { KEY_CHARS, KEY_CHARS_TEXT, KEY_MAX_LENGTH, type KvSetEvent } from '@walnut/schema';
import { API_ERROR_CODES, type ApiErrorCode } from './errors.ts';

/** Limits the request schemas enforce; from the API's config. */
export interface Limits {
  maxValueBytes: number;
  maxBatchOps: number;
}

/**
 * A key is ASCII from a small set, so it is one URL path segment as-is and its
 * length in characters is its length in bytes.
 */
export const key = z
  .string()
  .min(1, 'must not be empty')
  .max(KEY_MAX_LENGTH, `must be at most ${KEY_MAX_LENGTH} characters`)
  .regex(KEY_CHARS, `may only contain ${KEY_CHARS_TEXT}`)
  .openapi({ example: 'greeting', description: `1–${KEY_MAX_LENGTH} of ${KEY_CHARS_TEXT}` });

/** Marks the issue a too-large value raises, so the validation hook answers 413. */
export const VALUE_TOO_LARGE = 'VALUE_TOO_LARGE' satisfies ApiErrorCode;

/**
 * Any JSON value: the body came through JSON.parse, so "present" is the only
 * structural check left, plus the size limit. (z.json() would re-walk the value
 * and its recursive schema does not survive OpenAPI generation with a refinement.)
 */
function value(limits: Limits) {
  return z
    .custom<KvSetEvent['value']>((v) => v !== undefined, { message: 'is required' })
    .superRefine((v, ctx) => {
      const problem = unstorableJson(v);
      if (problem) {
        ctx.addIssue({ code: 'custom', message: problem });
        return;
      }
      const bytes = Buffer.byteLength(JSON.stringify(v));
      if (bytes > limits.maxValueBytes) {
        ctx.addIssue({
          code: 'custom',
          message: `is ${bytes} bytes as JSON, more than ${limits.maxValueBytes}`,
          params: { code: VALUE_TOO_LARGE },
        });
      }
    })
    .openapi('JsonValue', {
      type: ['object', 'array', 'string', 'number', 'boolean', 'null'],
      description: `Any JSON value, at most ${limits.maxValueBytes} bytes as compact JSON`,
      example: { hello: 'world' },
    });
}

/** Deeper values are refused: Postgres's jsonb parser runs out of stack a few thousand levels down. */
export const MAX_VALUE_DEPTH = 512;
// A UTF-16 surrogate without its other half: valid in a JS string, not in UTF-8.
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/**
 * What JSON.parse accepts but jsonb does not: \u0000 and unpaired surrogates in
 * strings or member names, and very deep nesting. Caught here, such a value is a
 * 422 that writes nothing instead of a failed transaction. Iterative, so depth
 * cannot overflow our own stack either.
 */
export function unstorableJson(root: unknown): string | null {
  const stack: Array<{ v: unknown; depth: number }> = [{ v: root, depth: 0 }];
  const badText = (s: string) => s.includes('\u0000') || LONE_SURROGATE.test(s);
  while (stack.length > 0) {
    const { v, depth } = stack.pop() as { v: unknown; depth: number };
    if (typeof v === 'string') {
      if (badText(v)) return 'holds a string with \\u0000 or an unpaired UTF-16 surrogate, which Postgres cannot store';
    } else if (v !== null && typeof v === 'object') {
      if (depth >= MAX_VALUE_DEPTH) return `is nested more than ${MAX_VALUE_DEPTH} levels deep`;
      if (Array.isArray(v)) for (const item of v) stack.push({ v: item, depth: depth + 1 });
      else
        for (const [name, item] of Object.entries(v)) {
          if (badText(name))
            return 'holds a member name with \\u0000 or an unpaired UTF-16 surrogate, which Postgres cannot store';
          stack.push({ v: item, depth: depth + 1 });
        }
    }
  }
  return null;
}

export const requestId = z.uuid().openapi({ example: '0b6f5a9e-4c1e-4f7a-9a43-2f0c1d1e2a3b' });

export function writeSchemas(limits: Limits) {
  const jsonValue = value(limits);
  const setOp = z.strictObject({ op: z.literal('set'), key, value: jsonValue });
  const deleteOp = z.strictObject({ op: z.literal('delete'), key });
  return {
    postBody: z.strictObject({ key, value: jsonValue }).openapi('SetRequest'),
    putBody: z.strictObject({ value: jsonValue }).openapi('PutRequest'),
    batchBody: z
      .strictObject({
        ops: z
          .array(z.discriminatedUnion('op', [setOp, deleteOp]))
          .min(1, 'must hold at least one operation')
          .max(limits.maxBatchOps, `must hold at most ${limits.maxBatchOps} operations`),
      })
      .superRefine(({ ops }, ctx) => {
        // One event per key per request keeps "applied" exact: the applier checks
        // that each key of a request holds this commit's version.
        const seen = new Set<string>();
        ops.forEach((op, i) => {
          if (seen.has(op.key)) ctx.addIssue({ code: 'custom', path: ['ops', i, 'key'], message: 'is repeated' });
          seen.add(op.key);
        });
      })
      .openapi('BatchRequest'),
  };
}

export const keyParam = z.object({ key: key.openapi({ param: { name: 'key', in: 'path' } }) });

export const idempotencyHeaders = z.object({
  'idempotency-key': z
    .string()
    .min(1)
    .max(255)
    .regex(/^[\x21-\x7e]+$/, 'must be printable ASCII without spaces')
    .optional()
    .openapi({
      description: 'Retries with the same key and body return the original request_id and write once.',
      example: '7f1c2d3e-order-42',
    }),
});

export const accepted = z
  .object({ status: z.literal('accepted'), request_id: requestId })
  .openapi('Accepted', { description: 'The write is committed to the outbox; follow it at /status/{request_id}.' });

export const kvItem = z
  .object({
    key,
    value: z.unknown().openapi({ description: 'The stored JSON value' }),
    version: z.string().regex(/^\d+$/).openapi({ description: 'Commit LSN << 32 | sequence, as a decimal' }),
  })
  .openapi('KvItem');

export const kvList = z
  .object({
    items: z.array(kvItem),
    next_cursor: z.string().nullable().openapi({ description: 'Pass as `cursor` for the next page; null at the end' }),
  })
  .openapi('KvList');

export const status = z
  .object({
    request_id: requestId,
    status: z.enum(['pending', 'published', 'applied']),
    created_at: z.string().openapi({ format: 'date-time' }),
    applied_at: z.string().nullable().openapi({ format: 'date-time' }),
  })
  .openapi('Status');

export const errorBody = z
  .object({
    error: z.object({
      code: z.enum(API_ERROR_CODES).openapi({ example: 'VALIDATION_FAILED' }),
      message: z.string(),
      details: z.unknown().optional(),
    }),
  })
  .openapi('Error');

/** The error responses a route can give, all in the one error shape. */
export function errors(...statuses: Array<400 | 401 | 404 | 409 | 413 | 415 | 422 | 503 | 504>) {
  const text: Record<number, string> = {
    400: 'Malformed request (JSON, path or query)',
    401: 'Missing or unknown API key',
    404: 'Not found',
    409: 'Idempotency-Key reused with a different request',
    413: 'Body or value too large',
    415: 'Body is not application/json',
    422: 'Body does not match the schema',
    503: 'Not ready',
    504: 'The request was not applied within the wait',
  };
  return Object.fromEntries(
    statuses.map((s) => [s, { description: text[s] ?? '', content: { 'application/json': { schema: errorBody } } }]),
  );
}
