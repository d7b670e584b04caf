/**
 * The integration tests' client of the Walnut API: one HTTP call, a write
 * that must be accepted, waiting until a request is applied, the API's error
 * shape, and the row counts of the tables a write touches.
 */
import type pg from 'pg';
import * as assert from 'uvu/assert';
import { waitFor } from './wait-for.ts';

/** What fetch accepts as a body. */
export type Body = NonNullable<RequestInit['body']>;

export interface Reply {
  status: number;
  headers: Headers;
  // biome-ignore lint/suspicious/noExplicitAny: tests read whatever JSON came back.
  body: any;
}

/** One HTTP call; a JSON body is serialized with content-type application/json unless headers say otherwise. */
export async function call(
  base: string,
  method: string,
  path: string,
  opts: { json?: unknown; body?: Body; headers?: Record<string, string> } = {},
): Promise<Reply> {
  const headers: Record<string, string> = { ...opts.headers };
  let body = opts.body;
  if (opts.json !== undefined) {
    body = JSON.stringify(opts.json);
    headers['content-type'] ??= 'application/json';
  }
  const init: RequestInit & { duplex?: 'half' } = { method, headers };
  if (body !== undefined) init.body = body;
  if (body instanceof ReadableStream) init.duplex = 'half';
  const res = await fetch(`${base}${path}`, init);
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {}
  return { status: res.status, headers: res.headers, body: parsed };
}

/** Asserts the API's one error shape, its status and, when given, its code. */
export function assertError(reply: Reply, status: number, code?: string): void {
  const where = JSON.stringify(reply.body);
  assert.is(reply.status, status, where);
  assert.type(reply.body?.error, 'object', `error shape: ${where}`);
  assert.type(reply.body.error.code, 'string', `error.code: ${where}`);
  assert.type(reply.body.error.message, 'string', `error.message: ${where}`);
  if (code) assert.is(reply.body.error.code, code, where);
}

/** Rows in the tables an accepted write adds to, to show that a refused one added none. */
export async function rowCounts(pool: pg.Pool): Promise<{ outbox: number; requests: number; idempotency: number }> {
  const { rows } = await pool.query(`
    SELECT (SELECT count(*) FROM outbox)::int AS outbox, (SELECT count(*) FROM requests)::int AS requests,
           (SELECT count(*) FROM idempotency_keys)::int AS idempotency`);
  return rows[0];
}

/** A write the API must accept (202); its request id. */
export async function write(base: string, method: string, path: string, json?: unknown, headers = {}) {
  const reply = await call(base, method, path, json === undefined ? { headers } : { json, headers });
  assert.is(reply.status, 202, JSON.stringify(reply.body));
  return reply.body.request_id as string;
}

/** Waits until the applier has applied the request, as GET /status says. */
export async function waitApplied(base: string, requestId: string, timeoutMs = 60_000): Promise<void> {
  await waitFor(
    `request ${requestId} applied`,
    async () => (await call(base, 'GET', `/status/${requestId}`)).body.status === 'applied',
    { timeoutMs, intervalMs: 100 },
  );
}
