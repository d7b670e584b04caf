/**
 * The whole pipeline on the real stack: HTTP → outbox → WAL → relay → Kafka →
 * applier → kvs → HTTP. Nothing is mocked.
 */
import { readTopic, type WalnutFixture, type WalnutProcess, waitFor, walnutFixture } from '@walnut/stack';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';

const pipeline = suite<{ walnut: WalnutFixture; api: string; applier: WalnutProcess | null }>('pipeline');

pipeline.before(async (ctx) => {
  ctx.walnut = await walnutFixture('pipeline', { env: { APPLIER_HTTP_PORT: '0' } });
  await ctx.walnut.startRelay();
  ctx.api = (await ctx.walnut.startApi()).url;
  ctx.applier = null;
});

pipeline.after(async ({ walnut }) => {
  await walnut.close();
});

async function put(api: string, key: string, value: unknown): Promise<string> {
  const res = await fetch(`${api}/kv`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ key, value }),
  });
  const body = (await res.json()) as { status: string; request_id: string };
  assert.is(res.status, 202, JSON.stringify(body));
  assert.is(body.status, 'accepted');
  return body.request_id;
}

async function status(api: string, requestId: string): Promise<string> {
  const res = await fetch(`${api}/status/${requestId}`);
  assert.is(res.status, 200);
  return ((await res.json()) as { status: string }).status;
}

/** Runs tasks with at most `limit` in flight. */
async function pooled<T>(count: number, limit: number, task: (i: number) => Promise<T>): Promise<T[]> {
  const results: T[] = new Array(count);
  let next = 0;
  await Promise.all(
    Array.from({ length: limit }, async () => {
      while (next < count) {
        const i = next++;
        results[i] = await task(i);
      }
    }),
  );
  return results;
}

pipeline('status goes pending/published before the applier runs, then applied', async (ctx) => {
  const requestId = await put(ctx.api, 'status-probe', { hello: 'world' });
  // Published means Kafka acked it; with no applier it cannot be applied yet.
  await waitFor('request published', async () => (await status(ctx.api, requestId)) === 'published', {
    timeoutMs: 30_000,
  });
  const [record] = await readTopic(ctx.walnut.kafka, ctx.walnut.topic, (r) =>
    r.some((x) => x.headers.id === requestId),
  );
  assert.ok(record, 'the published event is on the topic');
  ctx.applier = await ctx.walnut.startApplier();
  await waitFor('request applied', async () => (await status(ctx.api, requestId)) === 'applied', {
    timeoutMs: 60_000,
  });
  const res = await fetch(`${ctx.api}/kv/status-probe`);
  assert.is(res.status, 200);
  const body = (await res.json()) as { key: string; value: unknown; version: string };
  assert.equal(body.value, { hello: 'world' });
  assert.match(body.version, /^\d+$/);
});

pipeline('1,000 distinct keys written over HTTP become readable and applied', async ({ api, walnut }) => {
  const count = 1_000;
  const requestIds = await pooled(count, 32, (i) => put(api, `key-${i}`, { i, tag: `v${i}` }));
  await waitFor(
    'all 1,000 keys in kvs',
    async () => {
      const r = await walnut.pool.query(`SELECT count(*)::int AS n FROM kvs WHERE key LIKE 'key-%'`);
      return r.rows[0].n === count;
    },
    { timeoutMs: 120_000, intervalMs: 250 },
  );
  await pooled(count, 32, async (i) => {
    const res = await fetch(`${api}/kv/key-${i}`);
    assert.is(res.status, 200);
    const body = (await res.json()) as { key: string; value: unknown };
    assert.is(body.key, `key-${i}`);
    assert.equal(body.value, { i, tag: `v${i}` });
  });
  const statuses = await pooled(count, 32, (i) => status(api, requestIds[i] as string));
  assert.equal(
    statuses.filter((s) => s !== 'applied'),
    [],
    'every request reaches applied',
  );
});

pipeline('one key written 200 times concurrently ends with the last committed value', async ({ api, walnut }) => {
  // An independent witness of commit order: Postgres' own test_decoding plugin.
  const oracle = `${walnut.slot}_oracle`;
  await walnut.pool.query(`SELECT pg_create_logical_replication_slot($1, 'test_decoding')`, [oracle]);
  try {
    const writes = 200;
    const requestIds = await pooled(writes, 50, (i) => put(api, 'hot-key', i));
    const writtenValue = new Map(requestIds.map((id, i) => [id, i]));
    const changes = await walnut.pool.query<{ data: string }>(
      `SELECT data FROM pg_logical_slot_get_changes($1, NULL, NULL) WHERE data LIKE 'table public.outbox: INSERT:%'`,
      [oracle],
    );
    const committed = changes.rows
      .map((row) => /id\[uuid\]:'([0-9a-f-]{36})'/.exec(row.data)?.[1])
      .filter((id): id is string => id !== undefined && writtenValue.has(id));
    assert.is(committed.length, writes, 'the witness saw every write');
    const lastCommitted = writtenValue.get(committed.at(-1) as string);

    await waitFor(
      'every hot-key request applied',
      async () => {
        const r = await walnut.pool.query(
          `SELECT count(*)::int AS n FROM requests WHERE key = 'hot-key' AND applied_at IS NOT NULL`,
        );
        return r.rows[0].n === writes;
      },
      { timeoutMs: 60_000, intervalMs: 250 },
    );
    const res = await fetch(`${api}/kv/hot-key`);
    const body = (await res.json()) as { value: number };
    assert.is(body.value, lastCommitted, 'kvs holds the value of the last committed write');
  } finally {
    await walnut.pool.query('SELECT pg_drop_replication_slot($1)', [oracle]);
  }
});

pipeline.run();
