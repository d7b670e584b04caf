/**
 * Every malformed request is refused with the one error shape and the right
 * status, before anything is written: the outbox, requests and idempotency
 * tables hold exactly as many rows after the table of bad requests as before.
 */
import { assertError, type Body, call, rowCounts, type WalnutFixture, walnutFixture } from '@walnut/stack';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';

const MAX_VALUE = 4096;
const MAX_BODY = 16384;
const MAX_OPS = 5;

const validation = suite<{ walnut: WalnutFixture; api: string }>('validation');

validation.before(async (ctx) => {
  ctx.walnut = await walnutFixture('validation', {
    env: {
      API_MAX_VALUE_BYTES: String(MAX_VALUE),
      API_MAX_BODY_BYTES: String(MAX_BODY),
      API_MAX_BATCH_OPS: String(MAX_OPS),
    },
  });
  ctx.api = (await ctx.walnut.startApi()).url;
});

validation.after(async ({ walnut }) => {
  await walnut.close();
});

const json = { 'content-type': 'application/json' };
const long = (n: number) => 'k'.repeat(n);
const ops = (n: number) => Array.from({ length: n }, (_, i) => ({ op: 'set', key: `k${i}`, value: i }));
/** A body sent chunked, with no Content-Length: the limit must hold while it streams. */
const streamed = (bytes: number) =>
  new ReadableStream({
    start(controller) {
      const chunk = new TextEncoder().encode(`{"key":"k","value":"${'x'.repeat(bytes)}"}`);
      for (let i = 0; i < chunk.length; i += 4096) controller.enqueue(chunk.slice(i, i + 4096));
      controller.close();
    },
  });

interface BadRequest {
  name: string;
  method: string;
  path: string;
  body?: Body | (() => Body);
  headers?: Record<string, string>;
  status: number;
  code: string;
}

const bad: BadRequest[] = [
  {
    name: 'malformed JSON',
    method: 'POST',
    path: '/kv',
    body: '{"key":',
    headers: json,
    status: 400,
    code: 'MALFORMED_REQUEST',
  },
  { name: 'empty body', method: 'POST', path: '/kv', body: '', headers: json, status: 400, code: 'MALFORMED_REQUEST' },
  {
    name: 'text/plain body',
    method: 'POST',
    path: '/kv',
    body: '{"key":"k","value":1}',
    headers: { 'content-type': 'text/plain' },
    status: 415,
    code: 'UNSUPPORTED_MEDIA_TYPE',
  },
  {
    name: 'no content type',
    method: 'POST',
    path: '/kv',
    body: new Blob(['{"key":"k","value":1}']),
    status: 415,
    code: 'UNSUPPORTED_MEDIA_TYPE',
  },
  {
    name: 'form-encoded PUT',
    method: 'PUT',
    path: '/kv/k',
    body: 'value=1',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    status: 415,
    code: 'UNSUPPORTED_MEDIA_TYPE',
  },
  {
    name: 'key is a number',
    method: 'POST',
    path: '/kv',
    body: '{"key":42,"value":1}',
    headers: json,
    status: 422,
    code: 'VALIDATION_FAILED',
  },
  {
    name: 'value missing',
    method: 'POST',
    path: '/kv',
    body: '{"key":"k"}',
    headers: json,
    status: 422,
    code: 'VALIDATION_FAILED',
  },
  // JSON.parse accepts these; jsonb does not. Each was a 500 with a failed transaction.
  ...[
    ['\\u0000 in a string', '{"key":"k","value":"a\\u0000b"}'],
    ['\\u0000 in a member name', '{"key":"k","value":{"a\\u0000":1}}'],
    ['a lone high surrogate', '{"key":"k","value":["\\ud800"]}'],
    ['a lone low surrogate', '{"key":"k","value":{"x":"\\udc00y"}}'],
    ['nesting 600 levels deep', `{"key":"k","value":${'['.repeat(600)}${']'.repeat(600)}}`],
  ].map(([what, body]) => ({
    name: `value with ${what}`,
    method: 'POST',
    path: '/kv',
    body: body as string,
    headers: json,
    status: 422,
    code: 'VALIDATION_FAILED',
  })),
  {
    name: 'batch op value with \\u0000',
    method: 'POST',
    path: '/kv/batch',
    body: '{"ops":[{"op":"set","key":"a","value":1},{"op":"set","key":"b","value":"\\u0000"}]}',
    headers: json,
    status: 422,
    code: 'VALIDATION_FAILED',
  },
  {
    name: 'empty key',
    method: 'POST',
    path: '/kv',
    body: '{"key":"","value":1}',
    headers: json,
    status: 422,
    code: 'VALIDATION_FAILED',
  },
  {
    name: 'key of 513 characters',
    method: 'POST',
    path: '/kv',
    body: JSON.stringify({ key: long(513), value: 1 }),
    headers: json,
    status: 422,
    code: 'VALIDATION_FAILED',
  },
  {
    name: 'key with a space',
    method: 'POST',
    path: '/kv',
    body: '{"key":"a b","value":1}',
    headers: json,
    status: 422,
    code: 'VALIDATION_FAILED',
  },
  {
    name: 'key with a slash',
    method: 'POST',
    path: '/kv',
    body: '{"key":"a/b","value":1}',
    headers: json,
    status: 422,
    code: 'VALIDATION_FAILED',
  },
  {
    name: 'unknown field',
    method: 'POST',
    path: '/kv',
    body: '{"key":"k","value":1,"ttl":5}',
    headers: json,
    status: 422,
    code: 'VALIDATION_FAILED',
  },
  {
    name: 'body is an array',
    method: 'POST',
    path: '/kv',
    body: '[{"key":"k","value":1}]',
    headers: json,
    status: 422,
    code: 'VALIDATION_FAILED',
  },
  {
    name: 'body is null',
    method: 'POST',
    path: '/kv',
    body: 'null',
    headers: json,
    status: 422,
    code: 'VALIDATION_FAILED',
  },
  {
    name: 'value over the value limit',
    method: 'POST',
    path: '/kv',
    body: JSON.stringify({ key: 'k', value: 'x'.repeat(MAX_VALUE) }),
    headers: json,
    status: 413,
    code: 'VALUE_TOO_LARGE',
  },
  {
    name: 'body over the body limit',
    method: 'POST',
    path: '/kv',
    body: JSON.stringify({ key: 'k', value: 'x'.repeat(MAX_BODY) }),
    headers: json,
    status: 413,
    code: 'BODY_TOO_LARGE',
  },
  {
    name: 'chunked body over the body limit',
    method: 'POST',
    path: '/kv',
    body: () => streamed(MAX_BODY),
    headers: json,
    status: 413,
    code: 'BODY_TOO_LARGE',
  },
  {
    name: 'PUT with a bad key in the path',
    method: 'PUT',
    path: '/kv/a%20b',
    body: '{"value":1}',
    headers: json,
    status: 400,
    code: 'INVALID_REQUEST',
  },
  {
    name: 'PUT with a 513-character key',
    method: 'PUT',
    path: `/kv/${long(513)}`,
    body: '{"value":1}',
    headers: json,
    status: 400,
    code: 'INVALID_REQUEST',
  },
  {
    name: 'PUT with the key in the body',
    method: 'PUT',
    path: '/kv/k',
    body: '{"key":"k","value":1}',
    headers: json,
    status: 422,
    code: 'VALIDATION_FAILED',
  },
  { name: 'DELETE with a bad key', method: 'DELETE', path: '/kv/a%2Fb', status: 400, code: 'INVALID_REQUEST' },
  {
    name: 'batch without ops',
    method: 'POST',
    path: '/kv/batch',
    body: '{"ops":[]}',
    headers: json,
    status: 422,
    code: 'VALIDATION_FAILED',
  },
  {
    name: 'batch over the op limit',
    method: 'POST',
    path: '/kv/batch',
    body: JSON.stringify({ ops: ops(MAX_OPS + 1) }),
    headers: json,
    status: 422,
    code: 'VALIDATION_FAILED',
  },
  {
    name: 'batch with an unknown op',
    method: 'POST',
    path: '/kv/batch',
    body: '{"ops":[{"op":"incr","key":"k"}]}',
    headers: json,
    status: 422,
    code: 'VALIDATION_FAILED',
  },
  {
    name: 'batch repeating a key',
    method: 'POST',
    path: '/kv/batch',
    body: '{"ops":[{"op":"set","key":"k","value":1},{"op":"delete","key":"k"}]}',
    headers: json,
    status: 422,
    code: 'VALIDATION_FAILED',
  },
  {
    name: 'batch delete with a value',
    method: 'POST',
    path: '/kv/batch',
    body: '{"ops":[{"op":"delete","key":"k","value":1}]}',
    headers: json,
    status: 422,
    code: 'VALIDATION_FAILED',
  },
  {
    name: 'batch with one oversized value',
    method: 'POST',
    path: '/kv/batch',
    body: JSON.stringify({
      ops: [
        { op: 'set', key: 'a', value: 1 },
        { op: 'set', key: 'b', value: 'x'.repeat(MAX_VALUE) },
      ],
    }),
    headers: json,
    status: 413,
    code: 'VALUE_TOO_LARGE',
  },
  {
    name: 'Idempotency-Key with a space',
    method: 'POST',
    path: '/kv',
    body: '{"key":"k","value":1}',
    headers: { ...json, 'idempotency-key': 'a b' },
    status: 400,
    code: 'INVALID_REQUEST',
  },
  {
    name: 'Idempotency-Key of 256 characters',
    method: 'DELETE',
    path: '/kv/k',
    headers: { 'idempotency-key': long(256) },
    status: 400,
    code: 'INVALID_REQUEST',
  },
  { name: 'status of a bad UUID', method: 'GET', path: '/status/not-a-uuid', status: 400, code: 'INVALID_REQUEST' },
  { name: 'read after a bad UUID', method: 'GET', path: '/kv/k?after=1234', status: 400, code: 'INVALID_REQUEST' },
  {
    name: 'read after an unknown request',
    method: 'GET',
    path: '/kv/k?after=7d3c8f5e-2b1a-4c3d-9e8f-0a1b2c3d4e5f',
    status: 404,
    code: 'REQUEST_NOT_FOUND',
  },
  { name: 'list with limit 0', method: 'GET', path: '/kv?limit=0', status: 400, code: 'INVALID_REQUEST' },
  { name: 'list with a non-numeric limit', method: 'GET', path: '/kv?limit=ten', status: 400, code: 'INVALID_REQUEST' },
  { name: 'list with a forged cursor', method: 'GET', path: '/kv?cursor=JSUl', status: 400, code: 'INVALID_REQUEST' },
  {
    name: 'PATCH a key',
    method: 'PATCH',
    path: '/kv/k',
    body: '{"value":1}',
    headers: json,
    status: 405,
    code: 'METHOD_NOT_ALLOWED',
  },
  {
    name: 'PUT the collection',
    method: 'PUT',
    path: '/kv',
    body: '{"value":1}',
    headers: json,
    status: 405,
    code: 'METHOD_NOT_ALLOWED',
  },
  { name: 'DELETE the collection', method: 'DELETE', path: '/kv', status: 405, code: 'METHOD_NOT_ALLOWED' },
  {
    name: 'POST a status',
    method: 'POST',
    path: '/status/7d3c8f5e-2b1a-4c3d-9e8f-0a1b2c3d4e5f',
    body: '{}',
    headers: json,
    status: 405,
    code: 'METHOD_NOT_ALLOWED',
  },
  { name: 'unknown route', method: 'GET', path: '/nope', status: 404, code: 'NOT_FOUND' },
];

validation(`${bad.length} bad requests are refused with the error shape and write nothing`, async ({ api, walnut }) => {
  assert.ok(bad.length >= 20);
  const before = await rowCounts(walnut.pool);
  for (const req of bad) {
    const body = typeof req.body === 'function' ? req.body() : req.body;
    const reply = await call(api, req.method, req.path, {
      ...(body === undefined ? {} : { body }),
      ...(req.headers ? { headers: req.headers } : {}),
    });
    try {
      assertError(reply, req.status, req.code);
    } catch (error) {
      throw new Error(`${req.name}: ${(error as Error).message}`);
    }
    assert.ok(reply.headers.get('x-request-id'), `${req.name}: X-Request-Id on errors too`);
    if (req.status === 405) assert.ok(reply.headers.get('allow'), `${req.name}: Allow header`);
  }
  assert.equal(await rowCounts(walnut.pool), before, 'no outbox, requests or idempotency row was written');

  // The control: a good request does move the counters this test watches.
  const ok = await call(api, 'POST', '/kv', { json: { key: 'k', value: 'x'.repeat(MAX_VALUE - 2) } });
  assert.is(ok.status, 202, JSON.stringify(ok.body));
  assert.equal(await rowCounts(walnut.pool), { ...before, outbox: before.outbox + 1, requests: before.requests + 1 });
});

validation('validation details name the field that failed', async ({ api }) => {
  const reply = await call(api, 'POST', '/kv', { json: { key: 'a b', value: 1, extra: true } });
  assertError(reply, 422, 'VALIDATION_FAILED');
  const paths = (reply.body.error.details as Array<{ path: string }>).map((d) => d.path).sort();
  assert.equal(paths, ['', 'key']);
});

validation.run();
