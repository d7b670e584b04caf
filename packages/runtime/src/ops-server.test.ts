import type { Server } from 'node:http';
import { Registry } from 'prom-client';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { jsonResponse, listeningPort, type OpsProbes, type OpsRoute, serveOps } from './ops-server.ts';

async function withServer(
  probes: Partial<OpsProbes>,
  routes: Record<string, OpsRoute>,
  run: (url: string) => Promise<void>,
) {
  const server: Server = await serveOps({ registry: new Registry(), ...probes }, 0, '127.0.0.1', routes);
  try {
    await run(`http://127.0.0.1:${listeningPort(server)}`);
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
}

test('probes answer 200 when up and 503 when down; /ready follows /health unless given', async () => {
  let healthy = true;
  await withServer({ healthy: () => healthy }, {}, async (url) => {
    assert.equal(await (await fetch(`${url}/health`)).json(), { status: 'ok' });
    assert.is((await fetch(`${url}/ready`)).status, 200);
    healthy = false;
    const health = await fetch(`${url}/health`);
    assert.is(health.status, 503);
    assert.equal(await health.json(), { status: 'unhealthy' });
    assert.is((await fetch(`${url}/ready?probe=k8s`)).status, 503, 'the query string is not part of the path');
  });
});

test('/metrics answers even when the refresh before the scrape fails', async () => {
  const registry = new Registry();
  await withServer(
    {
      registry,
      beforeScrape: async () => {
        throw new Error('postgres down');
      },
    },
    {},
    async (url) => {
      const metrics = await fetch(`${url}/metrics`);
      assert.is(metrics.status, 200);
      assert.ok(metrics.headers.get('content-type')?.startsWith('text/plain'));
    },
  );
});

test('unknown paths, other methods and throwing routes answer the API error envelope', async () => {
  const routes: Record<string, OpsRoute> = {
    '/status.json': () => jsonResponse({ lag: 0 }),
    '/broken': () => {
      throw new Error('slot query failed');
    },
  };
  await withServer({}, routes, async (url) => {
    const missing = await fetch(`${url}/nope`);
    assert.is(missing.status, 404);
    assert.equal(await missing.json(), { error: { code: 'NOT_FOUND', message: 'no route /nope' } });

    const post = await fetch(`${url}/status.json`, { method: 'POST', body: '{}' });
    assert.is(post.status, 405);
    assert.is(post.headers.get('allow'), 'GET, HEAD');
    assert.equal(await post.json(), {
      error: { code: 'METHOD_NOT_ALLOWED', message: '/status.json answers GET' },
    });

    const broken = await fetch(`${url}/broken`);
    assert.is(broken.status, 500);
    assert.equal(await broken.json(), { error: { code: 'INTERNAL', message: 'slot query failed' } });

    assert.equal(await (await fetch(`${url}/status.json`)).json(), { lag: 0 });
  });
});

test('HEAD answers the GET headers with no body', async () => {
  await withServer({}, { '/status.json': () => jsonResponse({ lag: 0 }) }, async (url) => {
    const head = await fetch(`${url}/status.json`, { method: 'HEAD' });
    assert.is(head.status, 200);
    assert.is(head.headers.get('content-length'), String(Buffer.byteLength('{"lag":0}')));
    assert.is(await head.text(), '');
  });
});

test('a taken port rejects instead of serving nothing', async () => {
  await withServer({}, {}, async (url) => {
    const port = Number(new URL(url).port);
    const taken = await serveOps({ registry: new Registry() }, port, '127.0.0.1').then(
      (server) => server.close() && 'served',
      (error: NodeJS.ErrnoException) => error.code,
    );
    assert.is(taken, 'EADDRINUSE');
  });
});

test.run();
