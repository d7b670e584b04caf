/**
 * Graceful shutdown: a request in flight when SIGTERM arrives still completes
 * (and its write commits), new connections are refused, /ready is no longer
 * asked, and the process exits 0 once drained.
 */
import { request } from 'node:http';
import { exitCode, pause, walnutSuite } from '@walnut/stack';
import * as assert from 'uvu/assert';

const shutdown = walnutSuite('graceful shutdown', 'shutdown');

shutdown('a write in flight during SIGTERM completes and commits; then the API exits 0', async ({ walnut }) => {
  const { url, process: api } = await walnut.startApi();
  const body = JSON.stringify({ key: 'in-flight', value: 'x'.repeat(10_000) });
  const { port } = new URL(url);

  // Headers and half the body now, the rest after SIGTERM: the request is in flight.
  let resolveReply!: (reply: { status: number; body: string }) => void;
  const reply = new Promise<{ status: number; body: string }>((resolve) => {
    resolveReply = resolve;
  });
  const req = request(
    {
      host: '127.0.0.1',
      port,
      method: 'POST',
      path: '/kv',
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
    },
    (res) => {
      let text = '';
      res.on('data', (chunk) => {
        text += chunk;
      });
      res.on('end', () => resolveReply({ status: res.statusCode ?? 0, body: text }));
    },
  );
  req.write(body.slice(0, 5_000));
  await pause(200);

  api.child.kill('SIGTERM');
  await api.waitForLine(/"msg":"draining"/, 5_000);
  const refused = await fetch(`${url}/health`).then(
    () => 'answered',
    () => 'refused',
  );
  assert.is(refused, 'refused', 'the listener is closed while draining');
  assert.ok(api.running, 'still running while a request is in flight');

  req.end(body.slice(5_000));
  const { status, body: text } = await reply;
  assert.is(status, 202, text);
  const requestId = JSON.parse(text).request_id;
  const { rows } = await walnut.pool.query('SELECT payload FROM outbox WHERE id = $1', [requestId]);
  assert.is(rows[0]?.payload.key, 'in-flight', 'the write committed');

  assert.is(await exitCode(api, 15_000), 0);
  await api.waitForLine(/"msg":"stopped"/, 1_000);
});

shutdown.run();
