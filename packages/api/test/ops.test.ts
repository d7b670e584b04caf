/**
 * What operators and client authors rely on: the OpenAPI document lists every
 * route (and only real ones), /docs serves Swagger UI, /metrics has request
 * counts by route and status, latency and pool gauges, and X-Request-Id goes in,
 * out and into the log line.
 */
import {
  assertError,
  call,
  freePort,
  startWalnutProcess,
  type WalnutFixture,
  type WalnutProcess,
  walnutFixture,
} from '@walnut/stack';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';

const ops = suite<{ walnut: WalnutFixture; api: string; process: WalnutProcess }>('ops');

ops.before(async (ctx) => {
  ctx.walnut = await walnutFixture('ops');
  const { url, process } = await ctx.walnut.startApi();
  ctx.api = url;
  ctx.process = process;
});

ops.after(async ({ walnut }) => {
  await walnut.close();
});

const ROUTES = [
  'DELETE /kv/{key}',
  'GET /health',
  'GET /kv',
  'GET /kv/{key}',
  'GET /metrics',
  'GET /ready',
  'GET /status/{request_id}',
  'POST /kv',
  'POST /kv/batch',
  'PUT /kv/{key}',
];

ops('/openapi.json is OpenAPI 3.1 and lists every route', async ({ api }) => {
  const { status, body: doc } = await call(api, 'GET', '/openapi.json');
  assert.is(status, 200);
  assert.is(doc.openapi, '3.1.0');
  const listed = Object.entries(doc.paths as Record<string, Record<string, unknown>>)
    .flatMap(([path, methods]) => Object.keys(methods).map((m) => `${m.toUpperCase()} ${path}`))
    .sort();
  assert.equal(listed, ROUTES);
  for (const name of ['Error', 'SetRequest', 'PutRequest', 'BatchRequest', 'KvItem', 'KvList', 'Status', 'JsonValue']) {
    assert.ok(doc.components.schemas[name], `schema ${name}`);
  }
  assert.ok(doc.components.securitySchemes.bearer && doc.components.securitySchemes.apiKey);
  // Generated from the zod schemas: the limits show up as constraints.
  assert.is(doc.components.schemas.SetRequest.properties.key.maxLength, 512);
  assert.is(doc.components.schemas.SetRequest.additionalProperties, false);
});

ops('every documented route exists on the server with its method', async ({ api }) => {
  for (const route of ROUTES) {
    const [method, template] = route.split(' ') as [string, string];
    const path = template.replace('{key}', 'probe').replace('{request_id}', '7d3c8f5e-2b1a-4c3d-9e8f-0a1b2c3d4e5f');
    const reply = await call(api, method, path, method === 'POST' || method === 'PUT' ? { json: {} } : {});
    assert.not.ok(
      reply.status === 405 || (reply.status === 404 && reply.body?.error?.message === 'no such route'),
      `${route}: ${reply.status} ${JSON.stringify(reply.body)}`,
    );
  }
});

ops('/docs serves Swagger UI for the document', async ({ api }) => {
  const { status, body, headers } = await call(api, 'GET', '/docs');
  assert.is(status, 200);
  assert.match(headers.get('content-type') ?? '', /text\/html/);
  assert.match(body, /swagger-ui/i);
  assert.match(body, /\/openapi\.json/);
});

ops('/docs loads its script and stylesheet from the API itself, not a CDN', async ({ api }) => {
  const { body: page } = await call(api, 'GET', '/docs');
  // Offline, any absolute URL in the page is one that does not load.
  assert.not.match(page, /https?:\/\//i, 'no absolute http(s) URL in /docs');
  const urls = [...(page as string).matchAll(/\b(?:src|href)="([^"]*)"/g)].map((m) => m[1] as string);
  for (const url of urls) assert.ok(url.startsWith('/') && !url.startsWith('//'), `same-origin path: ${url}`);
  const scripts = urls.filter((u) => u.endsWith('.js'));
  const styles = urls.filter((u) => u.endsWith('.css'));
  assert.ok(scripts.length > 0 && styles.length > 0, `a script and a stylesheet: ${urls.join(' ')}`);
  const expected: Array<[string, RegExp]> = [
    ...scripts.map((url): [string, RegExp] => [url, /javascript/]),
    ...styles.map((url): [string, RegExp] => [url, /text\/css/]),
  ];
  for (const [url, type] of expected) {
    const asset = await call(api, 'GET', url);
    assert.is(asset.status, 200, url);
    assert.match(asset.headers.get('content-type') ?? '', type, url);
    // Swagger UI's bundle is ~1.7 MB and its stylesheet ~180 kB: anything small is an error page.
    assert.ok(String(asset.body).length > 100_000, `${url}: ${String(asset.body).length} characters`);
  }
  // Only those files, not the rest of swagger-ui-dist.
  assertError(await call(api, 'GET', `${scripts[0]?.replace(/[^/]+$/, '')}index.html`), 404, 'NOT_FOUND');
});

ops('X-Request-Id is echoed, generated when absent or unsafe, and logged', async ({ api, process }) => {
  const given = await call(api, 'GET', '/kv/missing', { headers: { 'x-request-id': 'trace-abc-123' } });
  assert.is(given.headers.get('x-request-id'), 'trace-abc-123');
  const generated = await call(api, 'GET', '/health');
  assert.match(generated.headers.get('x-request-id') ?? '', /^[0-9a-f-]{36}$/);
  const unsafe = await call(api, 'GET', '/health', { headers: { 'x-request-id': 'bad id; drop' } });
  assert.is.not(unsafe.headers.get('x-request-id'), 'bad id; drop');
  const line = await process.waitForLine(/"request_id":"trace-abc-123"/, 5_000);
  const entry = JSON.parse(line);
  assert.is(entry.route, '/kv/:key');
  assert.is(entry.status, 404);
  assert.type(entry.ms, 'number');
});

ops('/metrics counts requests by route pattern and status, with latency and pool stats', async ({ api }) => {
  await call(api, 'GET', '/kv/one');
  await call(api, 'GET', '/kv/two');
  await call(api, 'PATCH', '/kv/two', { json: {} });
  const { status, body, headers } = await call(api, 'GET', '/metrics');
  assert.is(status, 200);
  assert.match(headers.get('content-type') ?? '', /text\/plain/);
  const value = (series: string) => Number(new RegExp(`^${series} (\\S+)$`, 'm').exec(body)?.[1]);
  assert.ok(value('walnut_api_http_requests_total\\{method="GET",route="/kv/:key",status="404"\\}') >= 2);
  assert.ok(value('walnut_api_http_requests_total\\{method="PATCH",route="unmatched",status="405"\\}') >= 1);
  assert.ok(value('walnut_api_http_request_duration_seconds_count\\{method="GET",route="/kv/:key"\\}') >= 2);
  assert.match(body, /walnut_api_http_request_duration_seconds_bucket\{le="0.005",method="GET",route="\/kv\/:key"\}/);
  assert.ok(value('walnut_api_pg_pool_connections') >= 1);
  assert.is(value('walnut_api_pg_pool_max_connections'), 10);
  assert.ok(!Number.isNaN(value('walnut_api_pg_pool_idle_connections')));
  assert.ok(!Number.isNaN(value('walnut_api_pg_pool_waiting_clients')));
  assert.not.match(body, /route="\/kv\/one"/, 'raw paths never become labels');
});

ops('/health and /ready', async ({ api }) => {
  assert.equal((await call(api, 'GET', '/health')).body, { status: 'ok' });
  assert.equal((await call(api, 'GET', '/ready')).body, { status: 'ready' });
});

ops(
  '/ready without Postgres: 503 DATABASE_UNREACHABLE, and no Postgres error text in the open body',
  async ({ walnut }) => {
    // A role Postgres refuses, then nothing listening at all: both reasons stay in the log.
    const refused = new URL(walnut.databaseUrl);
    refused.username = 'walnut_no_such_role';
    const closed = new URL(walnut.databaseUrl);
    closed.port = String(await freePort());
    for (const databaseUrl of [refused, closed]) {
      const port = await freePort();
      const api = startWalnutProcess('api', {
        ...walnut.env,
        DATABASE_URL: databaseUrl.toString(),
        API_LISTEN_DATABASE_URL: walnut.databaseUrl,
        API_PORT: String(port),
      });
      try {
        await api.waitForLine(/api listening/);
        const reply = await call(`http://127.0.0.1:${port}`, 'GET', '/ready');
        assertError(reply, 503, 'DATABASE_UNREACHABLE');
        const body = JSON.stringify(reply.body);
        for (const leak of ['walnut_no_such_role', 'ECONNREFUSED', databaseUrl.port, databaseUrl.host, 'role']) {
          assert.not.ok(body.includes(leak), `/ready's body names ${leak}: ${body}`);
        }
        await api.waitForLine(/readiness: Postgres does not answer/);
      } finally {
        await api.stop('SIGKILL');
      }
    }
  },
);

ops.run();
