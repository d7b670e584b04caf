/**
 * API keys: with API_KEYS set, every KV and status route needs a key, as a
 * Bearer token or an X-API-Key header; probes, metrics and the docs stay open.
 * Idempotency-Key records are scoped per API key.
 */
import { assertError, call, rowCounts, type WalnutFixture, walnutFixture } from '@walnut/stack';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';

const KEYS = ['first-test-key', 'second-test-key'];
const auth = suite<{ walnut: WalnutFixture; api: string }>('auth');

auth.before(async (ctx) => {
  ctx.walnut = await walnutFixture('auth', { env: { API_KEYS: KEYS.join(', ') } });
  ctx.api = (await ctx.walnut.startApi()).url;
});

auth.after(async ({ walnut }) => {
  await walnut.close();
});

const body = { key: 'guarded', value: 1 };

auth('requests without a valid key are 401 and write nothing', async ({ api, walnut }) => {
  const before = await rowCounts(walnut.pool);
  const missing = await call(api, 'POST', '/kv', { json: body });
  assertError(missing, 401, 'UNAUTHENTICATED');
  assert.match(missing.headers.get('www-authenticate') ?? '', /^Bearer/);
  for (const headers of [
    { authorization: 'Bearer wrong-key' },
    { authorization: `Bearer ${KEYS[0]}x` },
    { authorization: `Basic ${KEYS[0]}` },
    { 'x-api-key': 'first-test-ke' },
    { 'x-api-key': '' },
  ]) {
    assertError(await call(api, 'POST', '/kv', { json: body, headers }), 401, 'UNAUTHENTICATED');
  }
  assertError(await call(api, 'GET', '/kv/guarded'), 401, 'UNAUTHENTICATED');
  assertError(await call(api, 'GET', '/kv'), 401, 'UNAUTHENTICATED');
  assertError(await call(api, 'GET', '/status/7d3c8f5e-2b1a-4c3d-9e8f-0a1b2c3d4e5f'), 401, 'UNAUTHENTICATED');
  assert.equal(await rowCounts(walnut.pool), before);
});

auth('either configured key works, as a Bearer token or as X-API-Key', async ({ api }) => {
  const bearer = await call(api, 'POST', '/kv', { json: body, headers: { authorization: `Bearer ${KEYS[0]}` } });
  assert.is(bearer.status, 202, JSON.stringify(bearer.body));
  const header = await call(api, 'PUT', '/kv/guarded', {
    json: { value: 2 },
    headers: { 'x-api-key': KEYS[1] as string },
  });
  assert.is(header.status, 202, JSON.stringify(header.body));
  const status = await call(api, 'GET', `/status/${bearer.body.request_id}`, {
    headers: { authorization: `bearer ${KEYS[1]}` },
  });
  assert.is(status.status, 200);
  assert.is(status.body.status, 'pending');
});

auth('probes, metrics and docs stay open', async ({ api }) => {
  for (const path of ['/health', '/ready', '/metrics', '/openapi.json', '/docs']) {
    assert.is((await call(api, 'GET', path)).status, 200, path);
  }
  // The script and stylesheet that /docs loads from the API.
  const page = (await call(api, 'GET', '/docs')).body as string;
  const assets = [...page.matchAll(/\b(?:src|href)="(\/[^"]*)"/g)].map((m) => m[1] as string);
  assert.ok(assets.length >= 2, `docs assets: ${assets.join(' ')}`);
  for (const path of assets) assert.is((await call(api, 'GET', path)).status, 200, path);
});

auth('Idempotency-Key records are per API key', async ({ api }) => {
  const send = (key: string) =>
    call(api, 'POST', '/kv', { json: body, headers: { 'x-api-key': key, 'idempotency-key': 'shared-key' } });
  const a1 = await send(KEYS[0] as string);
  const a2 = await send(KEYS[0] as string);
  const b1 = await send(KEYS[1] as string);
  assert.is(a1.body.request_id, a2.body.request_id);
  assert.is.not(b1.body.request_id, a1.body.request_id, 'another caller never sees the first one’s request');
});

auth.run();
