/**
 * Outbox retention: the applier deletes outbox rows past the retention once
 * their request is applied, in small batches, and never a row whose request is
 * not applied; applied request rows go after their own retention, unapplied
 * ones never. The deletes produce nothing on Kafka: the publication is
 * inserts-only, and the topic's end offsets count exactly the inserts.
 */
import { randomUUID } from 'node:crypto';
import {
  call,
  httpUrl,
  pause,
  readWholeTopic,
  type WalnutFixture,
  type WalnutProcess,
  waitApplied,
  waitFor,
  walnutFixture,
  write,
} from '@walnut/stack';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';

const BATCH_ROWS = 7;
const retention = suite<{ walnut: WalnutFixture; api: string; applier: WalnutProcess }>('outbox retention');

retention.before(async (ctx) => {
  ctx.walnut = await walnutFixture('retention', {
    env: {
      APPLIER_HTTP_PORT: '0',
      APPLIER_OUTBOX_RETENTION_SECONDS: '2',
      APPLIER_IDEMPOTENCY_RETENTION_SECONDS: '2',
      APPLIER_REQUEST_RETENTION_SECONDS: '3',
      APPLIER_RETENTION_INTERVAL_MS: '200',
      APPLIER_RETENTION_BATCH_ROWS: String(BATCH_ROWS),
    },
  });
  await ctx.walnut.startRelay();
  ctx.api = (await ctx.walnut.startApi()).url;
  ctx.applier = await ctx.walnut.startApplier();
});

retention.after(async ({ walnut }) => {
  await walnut.close();
});

/** Committed records, not offsets: each Kafka transaction's commit marker takes an offset too. */
async function topicRecords(walnut: WalnutFixture): Promise<number> {
  return (await readWholeTopic(walnut.kafka, walnut.topic)).length;
}

retention('applied rows past retention are deleted in batches; deletes never reach Kafka', async (ctx) => {
  const { walnut, api } = ctx;
  const pub = await walnut.pool.query(
    `SELECT pubinsert, pubupdate, pubdelete, pubtruncate FROM pg_publication WHERE pubname = $1`,
    [walnut.env.RELAY_PUBLICATION],
  );
  assert.equal(pub.rows[0], { pubinsert: true, pubupdate: false, pubdelete: false, pubtruncate: false });

  const writes = 30;
  const ids: string[] = [];
  for (let i = 0; i < writes; i++)
    ids.push(await write(api, 'PUT', `/kv/r-${i}`, { value: i }, { 'idempotency-key': `r-${i}` }));
  for (const id of ids) await waitApplied(api, id);

  // A row whose request can never be applied: its payload is poison for the applier.
  const stuck = randomUUID();
  await walnut.pool.query(
    `WITH r AS (INSERT INTO requests (request_id, key, keys) VALUES ($1, 'stuck', '{stuck}'))
     INSERT INTO outbox (id, aggregatetype, aggregateid, type, payload) VALUES ($1, 'kv', 'stuck', 'kv.set', $2)`,
    [stuck, { op: 'set', key: 'stuck', request_id: stuck }],
  );

  await waitFor(
    'applied rows deleted',
    async () =>
      (await walnut.pool.query('SELECT count(*)::int AS n FROM outbox WHERE id = ANY($1)', [ids])).rows[0].n === 0,
    { timeoutMs: 30_000 },
  );
  await waitFor(
    'idempotency keys past retention deleted',
    async () => (await walnut.pool.query('SELECT count(*)::int AS n FROM idempotency_keys')).rows[0].n === 0,
    { timeoutMs: 30_000 },
  );
  await waitFor(
    'applied requests past retention deleted',
    async () =>
      (await walnut.pool.query('SELECT count(*)::int AS n FROM requests WHERE request_id = ANY($1)', [ids])).rows[0]
        .n === 0,
    { timeoutMs: 30_000 },
  );
  const pruned = await call(api, 'GET', `/status/${ids[0]}`);
  assert.is(pruned.status, 404, 'a pruned request is unknown to /status');
  const stuckRequest = await walnut.pool.query('SELECT 1 FROM requests WHERE request_id = $1', [stuck]);
  assert.is(stuckRequest.rowCount, 1, 'an unapplied request is never deleted');
  const swept = ctx.applier.output.filter((line) => line.includes('retention sweep deleted rows'));
  assert.ok(
    swept.length >= Math.ceil(writes / BATCH_ROWS),
    `deleted in batches of ${BATCH_ROWS}: ${swept.length} sweeps`,
  );
  for (const line of swept) {
    const { outbox, requests } = JSON.parse(line);
    assert.ok(outbox <= BATCH_ROWS && requests <= BATCH_ROWS, line);
  }

  // Past its retention too, but not applied: kept.
  await pause(2_500);
  const kept = await walnut.pool.query('SELECT 1 FROM outbox WHERE id = $1', [stuck]);
  assert.is(kept.rowCount, 1, 'an unapplied row is never deleted');

  // A marker written after the deletes; once it is published the relay has been
  // through all WAL before it, and the topic must hold exactly the inserts.
  const marker = await write(api, 'PUT', '/kv/marker', { value: 'm' });
  await waitFor('marker published', async () => {
    const s = (await call(api, 'GET', `/status/${marker}`)).body.status;
    return s === 'published' || s === 'applied';
  });
  assert.is(await topicRecords(walnut), writes + 1 + 1, `${writes} writes + the stuck row + the marker, no deletes`);

  const metrics = (await call(await httpUrl(ctx.applier), 'GET', '/metrics')).body as string;
  assert.match(metrics, new RegExp(`^walnut_applier_outbox_deleted_total ${writes}$`, 'm'));
});

retention.run();
