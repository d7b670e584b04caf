/**
 * The KV API end to end on the real stack (API → outbox → relay → Kafka →
 * applier): PUT, DELETE tombstones, batches in one transaction, paginated
 * listing with a stable cursor, Idempotency-Key, and read-your-writes with
 * `?after=` woken by the applier's NOTIFY rather than by polling.
 */
import {
  assertError,
  call,
  pause,
  readTopic,
  type WalnutFixture,
  type WalnutProcess,
  waitApplied,
  waitFor,
  walnutFixture,
  write,
} from '@walnut/stack';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';

const kv = suite<{ walnut: WalnutFixture; api: string; applier: WalnutProcess }>('kv api');

kv.before(async (ctx) => {
  ctx.walnut = await walnutFixture('kv_api', { env: { APPLIER_HTTP_PORT: '0', API_READ_AFTER_TIMEOUT_MS: '60000' } });
  await ctx.walnut.startRelay();
  ctx.api = (await ctx.walnut.startApi()).url;
  ctx.applier = await ctx.walnut.startApplier();
});

kv.after(async ({ walnut }) => {
  await walnut.close();
});

kv('PUT then GET ?after= reads the write; status has its timestamps', async ({ api }) => {
  const id = await write(api, 'PUT', '/kv/put-key', { value: { n: 1 } });
  const read = await call(api, 'GET', `/kv/put-key?after=${id}`);
  assert.is(read.status, 200, JSON.stringify(read.body));
  assert.equal(read.body.value, { n: 1 });
  const status = await call(api, 'GET', `/status/${id}`);
  assert.is(status.body.status, 'applied');
  assert.ok(Date.parse(status.body.created_at) <= Date.parse(status.body.applied_at), JSON.stringify(status.body));

  // Write-to-visible latency through relay, Kafka and applier, as a client of ?after= sees it.
  const rounds: number[] = [];
  for (let i = 0; i < 20; i++) {
    const started = performance.now();
    const rid = await write(api, 'PUT', '/kv/put-key', { value: i });
    const seen = await call(api, 'GET', `/kv/put-key?after=${rid}`);
    rounds.push(performance.now() - started);
    assert.is(seen.body.value, i, 'the read sees its own write');
  }
  rounds.sort((a, b) => a - b);
  console.log(`  PUT + GET ?after= round trip: median ${rounds[10]?.toFixed(0)} ms, max ${rounds[19]?.toFixed(0)} ms`);
});

kv('text outside ASCII round-trips byte for byte (paired surrogates are not refused)', async ({ api }) => {
  const value = { 名前: '😀 naïve', nested: ['\u00e9', '\ud83d\ude00'] };
  const id = await write(api, 'PUT', '/kv/unicode', { value });
  const read = await call(api, 'GET', `/kv/unicode?after=${id}`);
  assert.is(read.status, 200, JSON.stringify(read.body));
  assert.equal(read.body.value, value);
});

kv('DELETE is a tombstone: the key reads 404, is not listed, and can be set again', async ({ api }) => {
  await waitApplied(api, await write(api, 'PUT', '/kv/doomed', { value: 'v1' }));
  const del = await write(api, 'DELETE', '/kv/doomed');
  assertError(await call(api, 'GET', `/kv/doomed?after=${del}`), 404, 'NOT_FOUND');
  const list = await call(api, 'GET', '/kv?prefix=doomed');
  assert.equal(list.body.items, []);
  const again = await write(api, 'PUT', '/kv/doomed', { value: 'v2' });
  const read = await call(api, 'GET', `/kv/doomed?after=${again}`);
  assert.is(read.status, 200);
  assert.is(read.body.value, 'v2');
});

kv('a batch commits every op in one transaction and is applied only once all keys are', async ({ api, walnut }) => {
  await waitApplied(api, await write(api, 'PUT', '/kv/batch-gone', { value: 0 }));
  const keys = Array.from({ length: 20 }, (_, i) => `batch-${i}`);
  const id = await write(api, 'POST', '/kv/batch', {
    ops: [...keys.map((key, i) => ({ op: 'set', key, value: i })), { op: 'delete', key: 'batch-gone' }],
  });
  const first = await call(api, 'GET', `/kv/batch-0?after=${id}`);
  assert.is(first.status, 200);
  // Applied means every key of the batch, whichever partition carried it.
  for (const [i, key] of keys.entries()) {
    const read = await call(api, 'GET', `/kv/${key}`);
    assert.is(read.status, 200, key);
    assert.is(read.body.value, i);
  }
  assertError(await call(api, 'GET', '/kv/batch-gone'), 404, 'NOT_FOUND');

  const records = await readTopic(
    walnut.kafka,
    walnut.topic,
    (r) => r.filter((x) => x.value?.includes(id)).length === keys.length + 1,
  );
  const ofBatch = records.filter((r) => r.value?.includes(id));
  assert.is(ofBatch.length, keys.length + 1, 'one event per op');
  const lsns = new Set(ofBatch.map((r) => r.headers['walnut-commit-lsn']));
  assert.is(lsns.size, 1, 'one commit LSN: one transaction');
  const seqs = new Set(ofBatch.map((r) => r.headers['walnut-seq']));
  assert.is(seqs.size, keys.length + 1, 'distinct positions in the transaction');
});

kv('concurrent writes share commits (group commit), each with its own request and value', async ({ api, walnut }) => {
  const n = 300;
  const ids = await Promise.all(
    Array.from({ length: n }, (_, i) => write(api, 'PUT', `/kv/group-${i}`, { value: { i } })),
  );
  assert.is(new Set(ids).size, n, 'one request id per write');
  const { rows } = await walnut.pool.query<{ rows: number; commits: number; requests: number }>(
    `SELECT count(*)::int AS rows, count(DISTINCT xmin::text)::int AS commits,
            (SELECT count(*)::int FROM requests WHERE request_id = ANY($1::uuid[])) AS requests
       FROM outbox WHERE id = ANY($1::uuid[])`,
    [ids],
  );
  assert.is(rows[0]?.rows, n, 'every 202 has its outbox row');
  assert.is(rows[0]?.requests, n, 'and its request row');
  assert.ok((rows[0]?.commits ?? n) < n, `${n} writes in ${rows[0]?.commits} transactions: some shared one`);
  for (const i of [0, n / 2, n - 1]) {
    const read = await call(api, 'GET', `/kv/group-${i}?after=${ids[i]}`);
    assert.equal(read.body.value, { i });
  }
  await waitApplied(api, ids[n - 1] as string);
});

kv('GET /kv pages in key order with a cursor that stays stable under writes', async ({ api }) => {
  const keys = Array.from({ length: 25 }, (_, i) => `page-${String(i).padStart(2, '0')}`);
  const id = await write(api, 'POST', '/kv/batch', { ops: keys.map((key) => ({ op: 'set', key, value: key })) });
  await waitApplied(api, id);
  const seen: string[] = [];
  let cursor: string | null = null;
  let pages = 0;
  do {
    const reply = await call(api, 'GET', `/kv?prefix=page-&limit=10${cursor ? `&cursor=${cursor}` : ''}`);
    assert.is(reply.status, 200, JSON.stringify(reply.body));
    seen.push(...reply.body.items.map((item: { key: string }) => item.key));
    cursor = reply.body.next_cursor;
    if (pages++ === 0) {
      // Written while paging: one key behind the cursor, one ahead of it.
      const behind = await write(api, 'PUT', '/kv/page-00a', { value: 'behind' });
      const ahead = await write(api, 'PUT', '/kv/page-99', { value: 'ahead' });
      await waitApplied(api, behind);
      await waitApplied(api, ahead);
    }
  } while (cursor);
  assert.equal(seen, [...keys, 'page-99'], 'each original key once, in order; the key behind the cursor is not seen');
  assert.is(pages, 3);
  const underscore = await call(api, 'GET', '/kv?prefix=page_');
  assert.equal(underscore.body.items, [], '`_` in a prefix is a character, not a LIKE wildcard');
});

kv('Idempotency-Key: a retry returns the original request_id and writes once', async ({ api, walnut }) => {
  const headers = { 'idempotency-key': 'order-42' };
  const first = await call(api, 'PUT', '/kv/idem', { json: { value: 1 }, headers });
  const retry = await call(api, 'PUT', '/kv/idem', { json: { value: 1 }, headers });
  assert.is(first.status, 202);
  assert.is(retry.status, 202);
  assert.is(retry.body.request_id, first.body.request_id);
  assert.is(retry.headers.get('idempotent-replayed'), 'true');
  assertError(await call(api, 'PUT', '/kv/idem', { json: { value: 2 }, headers }), 409, 'IDEMPOTENCY_KEY_REUSED');
  assertError(await call(api, 'PUT', '/kv/other', { json: { value: 1 }, headers }), 409, 'IDEMPOTENCY_KEY_REUSED');

  // Twenty concurrent copies of one request: one write, one request id.
  const race = { 'idempotency-key': 'race-1' };
  const replies = await Promise.all(
    Array.from({ length: 20 }, () => call(api, 'POST', '/kv', { json: { key: 'race', value: 'x' }, headers: race })),
  );
  assert.equal([...new Set(replies.map((r) => r.status))], [202]);
  const ids = new Set(replies.map((r) => r.body.request_id));
  assert.is(ids.size, 1);
  const { rows } = await walnut.pool.query(
    `SELECT count(*)::int AS n FROM outbox WHERE aggregateid IN ('idem', 'race', 'other')`,
  );
  assert.is(rows[0].n, 2, 'one outbox row per idempotent request');
});

kv('?after= times out with 504 while the applier is down, and wakes readers once it is back', async (ctx) => {
  const { api, walnut } = ctx;
  await ctx.applier.stop('SIGTERM');
  const id = await write(api, 'PUT', '/kv/ryw', { value: 'fresh' });
  const timedOut = await call(api, 'GET', `/kv/ryw?after=${id}&timeout_ms=300`);
  assertError(timedOut, 504, 'NOT_APPLIED_YET');
  assert.is(timedOut.body.error.details.request_id, id);

  // Twenty readers wait at once. Each checks the request once, then sleeps in memory:
  // index scans on `requests` grow by about one per reader, not one per reader per tick.
  const scans = async () =>
    (
      await walnut.pool.query(
        `SELECT (idx_scan + seq_scan)::int AS n FROM pg_stat_user_tables WHERE relname = 'requests'`,
      )
    ).rows[0].n as number;
  const readers = 20;
  const waitMs = 2_000;
  const before = await scans();
  const outcomes = await Promise.all(
    Array.from({ length: readers }, () => call(api, 'GET', `/kv/ryw?after=${id}&timeout_ms=${waitMs}`)),
  );
  assert.equal([...new Set(outcomes.map((r) => r.status))], [504]);
  // Postgres publishes a backend's table counters about a second after it goes idle.
  const grown = await waitFor('the readers scans to show up in pg_stat', async () => {
    const n = (await scans()) - before;
    return n >= readers && n;
  });
  await pause(1_500);
  const total = (await scans()) - before;
  console.log(`  ${readers} readers waiting ${waitMs} ms cost ${total} scans of requests (first count ${grown})`);
  assert.ok(total < readers * 2, `no polling per waiting reader: ${total} scans`);

  const waiting = Array.from({ length: readers }, () => call(api, 'GET', `/kv/ryw?after=${id}&timeout_ms=30000`));
  await waitFor('readers registered', async () => {
    const metrics = await call(api, 'GET', '/metrics');
    return /^walnut_api_read_after_waiters (\d+)$/m.exec(metrics.body)?.[1] === String(readers);
  });
  ctx.applier = await walnut.startApplier();
  const woken = await Promise.all(waiting);
  const wokenAt = Date.now();
  assert.equal([...new Set(woken.map((r) => r.status))], [200]);
  assert.ok(woken.every((r) => r.body.value === 'fresh'));
  const status = await call(api, 'GET', `/status/${id}`);
  console.log(`  readers answered ${wokenAt - Date.parse(status.body.applied_at)} ms after applied_at`);
});

kv.run();
