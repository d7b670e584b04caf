/**
 * The relay with RELAY_SINK=redis, on a real redis-server (appendonly yes,
 * appendfsync always): outbox inserts become stream entries with their bytes
 * intact; a relay SIGKILLed mid-stream and restarted leaves every row in the
 * stream exactly once (the resend is refused by its LSN-derived entry id); a
 * redis-server SIGKILLed and restarted loses nothing it acked; a bad
 * REDIS_URL is one line and exit 2.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { formatLsn, parseLsn } from '@walnut/schema';
import {
  confirmedLsn,
  countDelivery,
  exitCode,
  httpUrl,
  type RedisHandle,
  redisServerInstalled,
  runRelayCli,
  startRedis,
  startWalnutProcess,
  type WalnutFixture,
  type WalnutProcess,
  waitConfirmed,
  waitFor,
  walnutFixture,
} from '@walnut/stack';
import { Redis } from 'ioredis';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { RelayError } from '../src/errors.ts';
import { RedisSink } from '../src/publish/redis-sink.ts';
import { numberedContents, numberedSlabRecords, readable } from './wire-records.ts';

interface Ctx {
  walnut: WalnutFixture;
  redis: RedisHandle;
  client: Redis;
  dir: string;
  started: WalnutProcess[];
  env: Record<string, string>;
}

const tests = suite<Ctx>('redis sink');

tests.before(async (ctx) => {
  ctx.started = [];
  if (!redisServerInstalled()) return;
  ctx.dir = await mkdtemp(path.join(process.env.WALNUT_STACK_DIR ?? tmpdir(), 'redis-'));
  ctx.redis = await startRedis({ dir: ctx.dir });
  ctx.client = new Redis(ctx.redis.url, { lazyConnect: true });
  ctx.client.on('error', () => {});
  ctx.walnut = await walnutFixture('redis_sink');
  ctx.env = { RELAY_SINK: 'redis', REDIS_URL: ctx.redis.url, RELAY_STANDBY: 'false' };
});

tests.after.each(async ({ started }) => {
  await Promise.all(started.splice(0).map((p) => p.stop('SIGKILL')));
});

tests.after(async (ctx) => {
  await ctx.walnut?.close();
  ctx.client?.disconnect();
  await ctx.redis?.stop();
  if (ctx.dir) await rm(ctx.dir, { recursive: true, force: true });
});

function skipped(ctx: Ctx): boolean {
  if (ctx.redis) return false;
  console.log('  redis sink: skipped, redis-server is not installed (./walnut install installs it)');
  return true;
}

async function startRelay(ctx: Ctx): Promise<WalnutProcess> {
  const relay = startWalnutProcess('relay', { ...ctx.walnut.relayEnv, ...ctx.env });
  ctx.started.push(relay);
  await relay.waitForLine(/"state":"streaming"/);
  return relay;
}

type Entry = [id: string, fields: Buffer[]];

/** Every entry of the stream, oldest first, its fields by name. */
async function entries(client: Redis, stream: string): Promise<Array<{ id: string; fields: Map<string, Buffer> }>> {
  const out: Array<{ id: string; fields: Map<string, Buffer> }> = [];
  let from = '-';
  for (;;) {
    const page = (await client.xrangeBuffer(stream, from, '+', 'COUNT', 5_000)) as unknown as Entry[];
    for (const [id, flat] of page) {
      const fields = new Map<string, Buffer>();
      for (let i = 0; i < flat.length; i += 2) fields.set(String(flat[i]), flat[i + 1] as Buffer);
      out.push({ id: String(id), fields });
    }
    if (page.length < 5_000) return out;
    from = `(${String((page.at(-1) as Entry)[0])}`;
  }
}

tests('outbox inserts become entries: key, payload bytes, h:<header> fields, ids from the commit LSN', async (ctx) => {
  if (skipped(ctx)) return;
  const { walnut, client } = ctx;
  const relay = await startRelay(ctx);
  const ids = [randomUUID(), randomUUID(), randomUUID()];
  // Payload bytes as Postgres prints the jsonb, non-ASCII and nesting included.
  const payloads = [
    { op: 'set', key: 'ü', value: { n: 1 } },
    { op: 'delete', key: 'b' },
    { op: 'set', value: [] },
  ];
  const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
  const db = await walnut.pool.connect();
  try {
    await db.query('BEGIN');
    for (const [i, id] of ids.entries()) {
      await db.query(
        `INSERT INTO outbox (id, aggregatetype, aggregateid, type, payload, traceparent) VALUES ($1, 'kv', $2, 'kv.set', $3, $4)`,
        [id, `key-${i}`, JSON.stringify(payloads[i]), traceparent],
      );
    }
    await db.query('COMMIT');
  } finally {
    db.release();
  }
  await client.connect();
  const stream = walnut.topic;
  await waitFor('three entries', async () => (await client.xlen(stream)) === 3, { timeoutMs: 30_000 });
  const printed = await walnut.pool.query<{ id: string; payload: string }>(
    'SELECT id::text, payload::text FROM outbox ORDER BY aggregateid',
  );
  const got = await entries(client, stream);
  const commitLsn = got[0]?.fields.get('h:walnut-commit-lsn')?.toString() ?? '';
  assert.equal(
    got.map((e) => e.id),
    [0, 1, 2].map((seq) => `${parseLsn(commitLsn)}-${seq}`),
    'ids: <commit LSN as a decimal>-<position>',
  );
  for (const [i, entry] of got.entries()) {
    const row = printed.rows[i] as { id: string; payload: string };
    assert.is(entry.fields.get('key')?.toString(), `key-${i}`);
    assert.ok(entry.fields.get('payload')?.equals(Buffer.from(row.payload)), `payload bytes of row ${i}`);
    assert.is(entry.fields.get('h:id')?.toString(), row.id);
    assert.is(entry.fields.get('h:type')?.toString(), 'kv.set');
    assert.is(entry.fields.get('h:traceparent')?.toString(), traceparent);
    assert.is(entry.fields.get('h:walnut-seq')?.toString(), String(i));
    assert.is(entry.fields.get('h:walnut-commit-lsn')?.toString(), commitLsn);
  }
  // Confirmed only once Redis acked them; the sink is named where Kafka was.
  await waitConfirmed(walnut.pool, walnut.slot, parseLsn(commitLsn), { what: 'the commit confirmed' });
  const base = await httpUrl(relay);
  const metrics = await (await fetch(`${base}/metrics`)).text();
  assert.match(metrics, /walnut_relay_sink_info\{sink="redis"\} 1/);
  assert.match(metrics, /walnut_relay_events_total 3/);
  const status = (await (await fetch(`${base}/status.json`)).json()) as { sink: string };
  assert.is(status.sink, 'redis');
  console.log(
    `  redis sink: 3 entries in ${stream}, ids ${got.map((e) => e.id).join(', ')} (${formatLsn(parseLsn(commitLsn))})`,
  );
});

/** Commits `transactions` of `rowsPerTx` rows in the background; the ids in commit order. */
function writeLoad(walnut: WalnutFixture, transactions: number, rowsPerTx: number) {
  const ids: string[] = [];
  const state = { committed: 0 };
  const done = (async () => {
    for (let t = 0; t < transactions; t++) {
      const batch = Array.from({ length: rowsPerTx }, () => randomUUID());
      await walnut.pool.query(
        `INSERT INTO outbox (id, aggregatetype, aggregateid, type, payload)
         SELECT u::uuid, 'kv', 'k' || (($2::int + o) % 37), 'kv.set', jsonb_build_object('t', $2::int, 'r', o)
           FROM unnest($1::text[]) WITH ORDINALITY AS x(u, o)`,
        [batch, t],
      );
      ids.push(...batch);
      state.committed++;
    }
  })();
  return { ids, state, done };
}

/** Entries of the stream above the slot's confirmed LSN: what a restarted relay resends. */
async function unconfirmedEntries(ctx: Ctx): Promise<number> {
  const confirmed = await confirmedLsn(ctx.walnut.pool, ctx.walnut.slot);
  return (await ctx.client.xrange(ctx.walnut.topic, `${confirmed}-0`, '+')).length;
}

tests('relay SIGKILLed mid-stream, restarted: 0 missing, 0 duplicates', async (ctx) => {
  if (skipped(ctx)) return;
  const { walnut, client } = ctx;
  await client.del(walnut.topic);
  let relay = await startRelay(ctx);
  const start = await confirmedLsn(walnut.pool, walnut.slot);
  const load = writeLoad(walnut, 300, 10);
  let resent = 0;
  for (const quarter of [1, 2]) {
    await waitFor(`${quarter} quarter(s) written`, async () => load.state.committed >= 75 * quarter);
    await waitConfirmed(walnut.pool, walnut.slot, start + 1n, { what: 'some progress confirmed' });
    assert.is(await relay.stop('SIGKILL'), null, 'killed by the signal');
    resent += await unconfirmedEntries(ctx);
    relay = await startRelay(ctx);
  }
  await load.done;
  const expected = new Set(load.ids);
  await waitFor('every row in the stream', async () => (await client.xlen(walnut.topic)) >= expected.size, {
    timeoutMs: 90_000,
  });
  // Nothing more may land: a resend after the count would show up as a duplicate.
  await waitConfirmed(walnut.pool, walnut.slot, await walInsert(walnut), { what: 'all confirmed' });
  const got = await entries(client, walnut.topic);
  const { missing, duplicates, unexpected } = countDelivery(
    expected,
    got.map((e) => e.fields.get('h:id')?.toString()),
  );
  console.log(
    `  redis sink: ${expected.size} rows, ${got.length} entries, ${missing.length} missing, ${duplicates} duplicates; ${resent} entries stood above the confirmed LSN at the kills (resent, refused by id)`,
  );
  assert.is(missing.length, 0, `missing ${missing.length} of ${expected.size}`);
  assert.is(duplicates, 0, 'a resend is refused by its entry id');
  assert.is(unexpected, 0);
  assert.equal(
    got.map((e) => e.fields.get('h:id')?.toString()),
    load.ids,
    'the stream holds the rows in commit order',
  );
});

async function walInsert(walnut: WalnutFixture): Promise<bigint> {
  const { rows } = await walnut.pool.query<{ lsn: string }>('SELECT pg_current_wal_insert_lsn()::text AS lsn');
  return parseLsn((rows[0] as { lsn: string }).lsn);
}

tests('redis-server SIGKILLed and restarted (appendfsync always): nothing acked is lost', async (ctx) => {
  if (skipped(ctx)) return;
  const { walnut, client, redis } = ctx;
  await client.del(walnut.topic);
  await startRelay(ctx);
  const start = await confirmedLsn(walnut.pool, walnut.slot);
  const load = writeLoad(walnut, 200, 10);
  await waitFor('a third written', async () => load.state.committed >= 66);
  await waitConfirmed(walnut.pool, walnut.slot, start + 1n, { what: 'some progress confirmed' });
  await redis.kill();
  const confirmedAtKill = await confirmedLsn(walnut.pool, walnut.slot);
  await new Promise((resolve) => setTimeout(resolve, 1_000));
  await redis.start();
  await load.done;
  const expected = new Set(load.ids);
  await waitFor('every row in the stream', async () => (await client.xlen(walnut.topic)) >= expected.size, {
    timeoutMs: 90_000,
  });
  await waitConfirmed(walnut.pool, walnut.slot, await walInsert(walnut), { what: 'all confirmed' });
  const got = await entries(client, walnut.topic);
  const { missing, duplicates } = countDelivery(
    expected,
    got.map((e) => e.fields.get('h:id')?.toString()),
  );
  console.log(
    `  redis sink: redis-server killed with the slot confirmed at ${formatLsn(confirmedAtKill)}: ${expected.size} rows, ${got.length} entries, ${missing.length} missing, ${duplicates} duplicates`,
  );
  assert.is(missing.length, 0, `missing ${missing.length} of ${expected.size}`);
  assert.is(duplicates, 0);
});

tests('a lost slot is SLOT_MISSING, not a silent new start; slot create is the way on', async (ctx) => {
  if (skipped(ctx)) return;
  const { walnut, client } = ctx;
  // The earlier tests streamed from this slot: its marker is in Redis.
  const markers = await client.keys('walnut-relay:slot:*');
  assert.ok(
    markers.some((key) => key.endsWith(`.${walnut.slot}`)),
    `a marker for ${walnut.slot}: ${markers}`,
  );
  await waitFor('the slot free', async () => {
    const r = await walnut.pool.query('SELECT active FROM pg_replication_slots WHERE slot_name = $1', [walnut.slot]);
    return r.rows[0]?.active !== true;
  });
  await walnut.pool.query('SELECT pg_drop_replication_slot($1)', [walnut.slot]);

  const relay = startWalnutProcess('relay', { ...walnut.relayEnv, ...ctx.env });
  ctx.started.push(relay);
  assert.is(await exitCode(relay, 60_000), 1, relay.tail());
  const fatal = relay.output.find((line) => line.includes('"level":60')) ?? '';
  assert.match(fatal, '"code":"SLOT_MISSING"');
  assert.match(fatal, `walnut-relay slot create --slot ${walnut.slot}`);
  const slots = await walnut.pool.query('SELECT 1 FROM pg_replication_slots WHERE slot_name = $1', [walnut.slot]);
  assert.is(slots.rowCount, 0, 'the relay did not recreate the slot');

  const created = await runRelayCli(['slot', 'create', '--slot', walnut.slot], walnut.relayEnv);
  assert.is(created.code, 0, created.stderr);
  await startRelay(ctx);
});

tests('a bad REDIS_URL: one line naming it, exit 2', async (ctx) => {
  if (skipped(ctx)) return;
  for (const [url, problem] of [
    ['http://127.0.0.1:6379', /must be a redis:\/\/ or rediss:\/\/ URL/],
    ['', /must be a redis/],
  ] as const) {
    const relay = startWalnutProcess('relay', { ...ctx.walnut.relayEnv, RELAY_SINK: 'redis', REDIS_URL: url });
    ctx.started.push(relay);
    // Exited, and its output drained: the refusal is printed before the exit.
    await waitFor('the relay to exit', async () => !relay.running && relay.child.stderr?.closed !== false, {
      timeoutMs: 30_000,
    });
    const lines = relay.output.filter((line) => line.includes('REDIS_URL'));
    assert.is(relay.child.exitCode, 2, `exit 2:\n${relay.tail(5)}`);
    assert.is(lines.length, 1, relay.tail(5));
    assert.match(lines[0] as string, /^walnut-relay: REDIS_URL \(or REDIS_URL_FILE\): /);
    assert.match(lines[0] as string, problem);
  }
});

tests("acked entries give their bytes back to the relay's slabs, and the stream holds them intact", async (ctx) => {
  if (skipped(ctx)) return;
  const stream = `slabs.${randomUUID()}`;
  const client = new Redis(ctx.redis.url, { lazyConnect: true });
  client.on('error', () => {});
  const acked: number[] = [];
  const failures: RelayError[] = [];
  const sink = new RedisSink<number>(
    client,
    {
      publisher: 'stream',
      maxRecordBytes: 1_000_000,
      deadLetterTopic: undefined,
      maxBatchRecords: 2,
      maxBatchBytes: 1 << 20,
      maxRequestsInFlight: 1,
      sendTimeoutMs: 10_000,
      lingerMs: 0,
      maxInflightRecords: 1_000,
      maxInflightBytes: 1 << 24,
      maxLen: undefined,
    },
    { acked: (token) => acked.push(token), failed: (error) => failures.push(error) },
  );
  try {
    await sink.start();
    const records = numberedSlabRecords(stream, 3, 0x1000n);
    for (const [seq, r] of records.entries()) sink.push(r, seq);
    assert.equal(records.map(readable), [true, true, true], 'pushed, not acked: kept');
    assert.is(await sink.drain(10_000), true);
    assert.equal(failures, []);
    assert.equal(acked, [0, 1, 2]);
    assert.equal(records.map(readable), [false, false, false], 'acked: given back');
    const got = await entries(ctx.client, stream);
    assert.equal(
      got.map((e) => [String(e.fields.get('h:id')), String(e.fields.get('payload'))]),
      numberedContents(3),
    );
  } finally {
    sink.close();
    client.disconnect();
  }
});

tests.run();
