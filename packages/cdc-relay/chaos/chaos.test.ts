/**
 * The relay's promise under real failures, on a private Postgres and Kafka that
 * this suite owns (it stops and restarts them): while the API takes a steady
 * write load, the relay is SIGKILLed at random moments, Kafka is down for 20 s,
 * Postgres restarts, and the applier is killed mid-batch. Then an independent
 * consumer reads the topic from the beginning and the tables are checked:
 * nothing committed is missing, per-key order is commit order, kvs is right;
 * with CHAOS_DELIVERY=exactly-once, no record is there twice.
 */
import { countDelivery, pause, readDistinctIds, type WalnutFixture, type WalnutProcess, waitFor } from '@walnut/stack';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { ApiLoad } from './load.ts';
import { chaosDelivery, type PrivateWalnut, startPrivateWalnut, stopPrivateWalnut } from './private-walnut.ts';

interface Ctx extends PrivateWalnut {
  relay: WalnutProcess;
  applier: WalnutProcess;
  api: string;
  apiProcess: WalnutProcess;
}

const MAX_INFLIGHT = 500;
const DELIVERY = chaosDelivery();
const chaos = suite<Ctx>(`chaos (${DELIVERY})`);
const log = (line: string) => console.log(`  chaos ${DELIVERY}: ${line}`);

chaos.before(async (ctx) => {
  await startPrivateWalnut(ctx, 'chaos', {
    env: {
      RELAY_MAX_INFLIGHT_RECORDS: String(MAX_INFLIGHT),
      RELAY_MAX_BATCH_RECORDS: '200',
      RELAY_BACKOFF_MAX_MS: '2000',
    },
  });
  ctx.relay = await ctx.walnut.startRelay();
  ctx.applier = await ctx.walnut.startApplier();
  const api = await ctx.walnut.startApi();
  ctx.api = api.url;
  ctx.apiProcess = api.process;
});

chaos.after(async (ctx) => {
  await stopPrivateWalnut(ctx, log);
});

chaos('nothing committed is lost or reordered through kills and outages', async (ctx) => {
  const { walnut, stack } = ctx;
  const load = new ApiLoad(ctx.api, { ratePerSecond: 150, keys: 40, maxInFlight: 32 });
  load.start();
  await waitFor('load under way', async () => load.accepted >= 300, { timeoutMs: 30_000 });

  // 1. SIGKILL the relay at random moments.
  const kills = 10;
  for (let i = 0; i < kills; i++) {
    await pause(300 + Math.random() * 1200);
    assert.is(await ctx.relay.stop('SIGKILL'), null);
    ctx.relay = await walnut.startRelay();
  }
  log(`relay SIGKILLed ${kills} times; ${load.accepted} writes accepted so far`);

  // 2. Kafka down for 20 s while writes continue: the relay must hold its window, not buffer.
  const acceptedBefore = load.accepted;
  await stack.kafka.stop();
  const outageEnds = Date.now() + 20_000;
  let peakRss = 0;
  while (Date.now() < outageEnds) {
    peakRss = Math.max(peakRss, ctx.relay.rssBytes() ?? 0);
    await pause(250);
  }
  const writtenDuringOutage = load.accepted - acceptedBefore;
  log(`Kafka down 20 s: ${writtenDuringOutage} writes accepted meanwhile, relay peak RSS ${mb(peakRss)} MB`);
  assert.ok(ctx.relay.running, 'the relay survives a broker outage');
  assert.ok(peakRss < 400 * 1024 * 1024, `relay RSS bounded during the outage (${mb(peakRss)} MB)`);
  await stack.kafka.start();
  const progressLines = ctx.relay.output.filter((line) => line.includes('"inflight"'));
  for (const line of progressLines) {
    const inflight = Number(/"inflight":(\d+)/.exec(line)?.[1] ?? 0);
    assert.ok(inflight <= MAX_INFLIGHT, `in-flight records never exceed the window (${inflight})`);
  }

  // 3. Postgres restarts (fast shutdown) while the relay is streaming.
  await waitFor('relay streaming again after the outage', async () => slotActive(walnut), { timeoutMs: 60_000 });
  const refusedBefore = load.failed;
  const restartStarted = Date.now();
  await stack.postgres.restart('fast');
  const restartMs = Date.now() - restartStarted;
  await waitFor('relay back on the slot after the restart', async () => slotActive(walnut), { timeoutMs: 60_000 });
  log(`Postgres restarted in ${restartMs} ms; ${load.failed - refusedBefore} writes refused meanwhile`);

  assert.ok(ctx.apiProcess.running, `the API survives the outages:\n${ctx.apiProcess.tail()}`);
  assert.ok(ctx.applier.running, `the applier survives the outages:\n${ctx.applier.tail()}`);

  // 4. Kill the applier while it applies batches.
  const appliedBefore = await appliedCount(walnut);
  await waitFor('applier busy', async () => (await appliedCount(walnut)) > appliedBefore, { timeoutMs: 30_000 });
  await ctx.applier.stop('SIGKILL');
  ctx.applier = await walnut.startApplier();

  await pause(2_000);
  await load.stop();
  log(`load stopped: ${load.accepted} accepted, ${load.failed} refused`);

  // The truth: what committed, in which order (test_decoding saw the commits in order).
  const rows = await walnut.pool.query<{ id: string; key: string; value: unknown }>(
    `SELECT id::text AS id, aggregateid AS key, payload -> 'value' AS value FROM outbox`,
  );
  const committed = new Map(rows.rows.map((r) => [r.id, r]));
  assert.ok(committed.size >= load.accepted, 'every accepted write is in the outbox');
  const changes = await walnut.pool.query<{ data: string }>(
    `SELECT data FROM pg_logical_slot_get_changes($1, NULL, NULL) WHERE data LIKE 'table public.outbox: INSERT:%'`,
    [ctx.oracle],
  );
  const commitOrder = changes.rows.map((r) => /id\[uuid\]:'([0-9a-f-]{36})'/.exec(r.data)?.[1] as string);
  assert.is(commitOrder.length, committed.size, 'the witness saw every committed row');
  const position = new Map(commitOrder.map((id, i) => [id, i]));

  const records = await readDistinctIds(walnut.kafka, walnut.topic, committed.size, 180_000);
  const { missing, duplicates } = countDelivery(
    committed.keys(),
    records.map((r) => r.headers.id),
  );
  log(`${committed.size} committed, ${records.length} records on the topic, ${duplicates} duplicates`);
  if (missing.length > 0) log(`relay output:\n${ctx.relay.tail(40)}`);
  assert.is(missing.length, 0, `committed rows missing from the topic: ${missing.slice(0, 5).join(', ')}`);
  // A read_committed reader (kafkajs's default) sees only committed Kafka transactions.
  if (DELIVERY === 'exactly-once') assert.is(duplicates, 0, 'exactly-once: no record twice');

  // Per key, first occurrences in partition order must be commit order.
  const byKey = new Map<string, typeof records>();
  for (const r of records) byKey.set(r.key ?? '', [...(byKey.get(r.key ?? '') ?? []), r]);
  for (const [key, list] of byKey) {
    list.sort((a, b) => Number(BigInt(a.offset) - BigInt(b.offset)));
    const firsts: number[] = [];
    const once = new Set<string>();
    for (const r of list) {
      const id = r.headers.id as string;
      if (once.has(id)) continue;
      once.add(id);
      firsts.push(position.get(id) ?? -1);
    }
    for (let i = 1; i < firsts.length; i++) {
      assert.ok((firsts[i] as number) > (firsts[i - 1] as number), `key ${key}: topic order differs from commit order`);
    }
  }

  // kvs holds, per key, the value of the last committed write.
  await waitFor(
    'applier caught up',
    async () => (await walnut.pool.query(`SELECT 1 FROM requests WHERE applied_at IS NULL LIMIT 1`)).rowCount === 0,
    { timeoutMs: 120_000, intervalMs: 500 },
  );
  const expected = new Map<string, unknown>();
  for (const id of commitOrder) {
    const row = committed.get(id);
    if (row) expected.set(row.key, row.value);
  }
  const kvs = await walnut.pool.query<{ key: string; value: unknown }>(`SELECT key, value FROM kvs`);
  assert.is(kvs.rowCount, expected.size);
  for (const { key, value } of kvs.rows) assert.equal(value, expected.get(key), `kvs[${key}]`);
  log(`kvs matches the last committed value of all ${expected.size} keys`);
});

async function slotActive(walnut: WalnutFixture): Promise<boolean> {
  const r = await walnut.pool.query('SELECT active FROM pg_replication_slots WHERE slot_name = $1', [walnut.slot]);
  return r.rows[0]?.active === true;
}

async function appliedCount(walnut: WalnutFixture): Promise<number> {
  const r = await walnut.pool.query(`SELECT count(*)::int AS n FROM requests WHERE applied_at IS NOT NULL`);
  return r.rows[0].n;
}

function mb(bytes: number): string {
  return (bytes / 1024 / 1024).toFixed(1);
}

chaos.run();
