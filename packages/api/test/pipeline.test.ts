/**
 * The whole pipeline on the real stack: HTTP → outbox → WAL → relay → Kafka →
 * applier → kvs → HTTP. Nothing is mocked. Every record read from Kafka is
 * checked against the published event schema (docs/events).
 */
import { readFileSync } from 'node:fs';
import { KV_EVENT_SCHEMA_PATH, type KvEvent } from '@walnut/schema';
import {
  readTopic,
  readWholeTopic,
  type TopicRecord,
  type WalnutFixture,
  type WalnutProcess,
  waitFor,
  walnutFixture,
} from '@walnut/stack';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';

// The committed file, not the zod schema: this is what consumers validate with.
// format "uuid" needs no checker: the schema carries zod's uuid pattern too.
const ajv = new Ajv2020({ allErrors: true, formats: { uuid: true } });
const validEvent = ajv.compile(
  JSON.parse(readFileSync(new URL(`../../../${KV_EVENT_SCHEMA_PATH}`, import.meta.url), 'utf8')),
);

/** Fails on the first record whose value is not a valid event, or whose key or type header disagrees with it. */
function assertPublishedEvents(records: readonly TopicRecord[]): void {
  for (const record of records) {
    const where = `record ${record.partition}/${record.offset} ${record.value?.slice(0, 200)}`;
    assert.ok(record.value !== null, `${where}: no value`);
    // A cast, checked on the next line.
    const event = JSON.parse(record.value ?? 'null') as KvEvent;
    assert.ok(validEvent(event), `${where} violates ${KV_EVENT_SCHEMA_PATH}: ${ajv.errorsText(validEvent.errors)}`);
    assert.is(record.key, event.key, `${where}: the record key is the event's key`);
    assert.is(record.headers.type, `kv.${event.op}`, `${where}: type header`);
    assert.match(record.headers.id ?? '', /^[0-9a-f-]{36}$/, `${where}: id header`);
  }
}

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
  const records = await readTopic(ctx.walnut.kafka, ctx.walnut.topic, (r) => r.some((x) => x.headers.id === requestId));
  assert.ok(
    records.some((x) => x.headers.id === requestId),
    'the published event is on the topic',
  );
  assertPublishedEvents(records);
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

pipeline('every record the relay produced is a valid published KV event', async ({ api, walnut }) => {
  // A delete too, so both kinds of event are on the topic.
  const res = await fetch(`${api}/kv/hot-key`, { method: 'DELETE' });
  assert.is(res.status, 202);
  const { request_id: deleteId } = (await res.json()) as { request_id: string };
  await waitFor('delete published', async () => (await status(api, deleteId)) !== 'pending', { timeoutMs: 30_000 });
  const records = await readWholeTopic(walnut.kafka, walnut.topic);
  // 1 + 1,000 + 200 sets and the delete, each written once (no retries here to duplicate one).
  assert.ok(records.length >= 1_202, `${records.length} records`);
  assert.ok(
    records.some((r) => r.headers.type === 'kv.delete'),
    'a delete event',
  );
  assertPublishedEvents(records);
});

pipeline.run();
