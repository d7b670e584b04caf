/**
 * /status.json and /metrics are open and each needs the slot's figures from
 * Postgres. A flood of requests at both must not queue a query per request on
 * the relay's connection: one query in flight serves every caller, and its
 * answer serves them for a second (SlotFiguresProbe).
 */
import { httpUrl, walnutSuite } from '@walnut/stack';
import * as assert from 'uvu/assert';

const flood = walnutSuite('status flood', 'status_flood');

const REQUESTS_PER_PATH = 200;

async function slotQueries(base: string): Promise<number> {
  const text = await (await fetch(`${base}/metrics`)).text();
  const match = /^walnut_relay_slot_queries_total (\d+)$/m.exec(text);
  assert.ok(match, 'no walnut_relay_slot_queries_total in /metrics');
  return Number(match[1]);
}

flood('200 requests each at /status.json and /metrics share one slot query a second', async ({ walnut }) => {
  const relay = await walnut.startRelay();
  const base = await httpUrl(relay);
  const before = await slotQueries(base);

  const started = performance.now();
  const replies = await Promise.all(
    Array.from({ length: REQUESTS_PER_PATH }, () => [
      fetch(`${base}/status.json`).then(async (r) => ({ status: r.status, body: await r.text() })),
      fetch(`${base}/metrics`).then(async (r) => ({ status: r.status, body: await r.text() })),
    ]).flat(),
  );
  const after = await slotQueries(base);
  const elapsedMs = performance.now() - started;

  for (const reply of replies) assert.is(reply.status, 200, reply.body);
  const status = JSON.parse(replies[0]?.body ?? '{}') as { postgres?: { confirmedLsn?: string } };
  assert.match(String(status.postgres?.confirmedLsn), /^[0-9A-F]+\/[0-9A-F]+$/, 'status.json carries the figures');
  // At most one query per second the flood lasted, plus the one the last scrape may send:
  // not one per request (400 before the probe shared them).
  const issued = after - before;
  const bound = Math.ceil(elapsedMs / 1000) + 1;
  assert.ok(issued <= bound, `${issued} slot queries for ${2 * REQUESTS_PER_PATH} requests (at most ${bound})`);
  await relay.stop('SIGTERM');
});

flood.run();
