/**
 * The write batcher against the real Postgres: a shared transaction is one
 * statement (issue 26 item 4), so these pin what that statement must keep.
 * Writes that share a commit keep their own rows in arrival order, and a write
 * Postgres refuses fails alone, the others in its batch committed and answered.
 */
import { KV_AGGREGATE_TYPE } from '@walnut/schema';
import { type WalnutFixture, walnutFixture } from '@walnut/stack';
import { drizzle } from 'drizzle-orm/node-postgres';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { WriteBatcher } from '../src/write-batcher.ts';

const commit = suite<{ walnut: WalnutFixture }>('write commit');

commit.before(async (ctx) => {
  ctx.walnut = await walnutFixture('write_commit', {});
});

commit.after(async ({ walnut }) => {
  await walnut.close();
});

const rowsOf = async (walnut: WalnutFixture, ids: readonly string[]) =>
  (
    await walnut.pool.query<{ id: string; aggregateid: string; payload: { request_id: string }; xid: string }>(
      'SELECT id, aggregateid, payload, xmin::text AS xid FROM outbox WHERE id = ANY($1::uuid[]) ORDER BY ctid',
      [ids],
    )
  ).rows;

commit('writes sharing a commit keep their rows, ids and arrival order', async ({ walnut }) => {
  // All eleven queue before the batcher's flush (setImmediate) and share one transaction.
  const batcher = WriteBatcher.forDatabase(drizzle(walnut.pool), { maxConcurrentCommits: 1, maxOpsPerCommit: 100 });
  const keys = Array.from({ length: 11 }, (_, i) => `order-${i}`);
  const ids = await Promise.all(keys.map((key, n) => batcher.submit([{ op: 'set', key, value: { n } }], undefined)));
  const rows = await rowsOf(walnut, ids);
  assert.equal(
    rows.map((r) => r.aggregateid),
    keys,
  );
  assert.equal(
    rows.map((r) => r.id),
    ids,
  );
  for (const row of rows) assert.is(row.payload.request_id, row.id);
  assert.is(new Set(rows.map((r) => r.xid)).size, 1, 'the queued writes shared one transaction');
  const requests = await walnut.pool.query<{ key: string; keys: string[] }>(
    'SELECT key, keys FROM requests WHERE request_id = ANY($1::uuid[])',
    [ids],
  );
  assert.is(requests.rowCount, 11);
  for (const r of requests.rows) assert.equal(r.keys, [r.key]);
  const aggregate = await walnut.pool.query('SELECT DISTINCT aggregatetype FROM outbox WHERE id = ANY($1::uuid[])', [
    ids,
  ]);
  assert.equal(aggregate.rows, [{ aggregatetype: KV_AGGREGATE_TYPE }]);
});

commit('a write Postgres refuses fails alone; the rest of its batch commits and answers', async ({ walnut }) => {
  const batcher = WriteBatcher.forDatabase(drizzle(walnut.pool), { maxConcurrentCommits: 1, maxOpsPerCommit: 100 });
  // \u0000 is valid JSON that jsonb refuses; the API's validation would answer 422 before this.
  const values: unknown[] = [1, 2, 'bad\u0000', 4, 5];
  const outcomes = await Promise.allSettled(
    values.map((value, n) => batcher.submit([{ op: 'set', key: `refuse-${n}`, value: value as never }], undefined)),
  );
  assert.equal(
    outcomes.map((o) => o.status),
    ['fulfilled', 'fulfilled', 'rejected', 'fulfilled', 'fulfilled'],
  );
  const ids = outcomes.flatMap((o) => (o.status === 'fulfilled' ? [o.value] : []));
  assert.is((await rowsOf(walnut, ids)).length, 4);
  const bad = await walnut.pool.query("SELECT 1 FROM outbox WHERE aggregateid = 'refuse-2'");
  assert.is(bad.rowCount, 0);
  const badRequest = await walnut.pool.query("SELECT 1 FROM requests WHERE key = 'refuse-2'");
  assert.is(badRequest.rowCount, 0);
});

commit.run();
