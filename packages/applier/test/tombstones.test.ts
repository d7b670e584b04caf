/**
 * Deletes are tombstones that keep their version. A set older than the delete,
 * arriving after it (a replay, or a record produced out of order), must not
 * resurrect the key; a newer set must bring it back; a replayed delete must not
 * delete a newer value. Stale records are produced straight to the topic with a
 * raw kafkajs producer, on the partition of the key's real events.
 */
import { randomUUID } from 'node:crypto';
import {
  assertError,
  call,
  readTopic,
  type TopicRecord,
  type WalnutFixture,
  waitApplied,
  waitFor,
  walnutFixture,
  write,
} from '@walnut/stack';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';

const tombstones = suite<{ walnut: WalnutFixture; api: string }>('tombstones');

tombstones.before(async (ctx) => {
  ctx.walnut = await walnutFixture('tombstones', { env: { APPLIER_HTTP_PORT: '0' } });
  await ctx.walnut.startRelay();
  ctx.api = (await ctx.walnut.startApi()).url;
  await ctx.walnut.startApplier();
});

tombstones.after(async ({ walnut }) => {
  await walnut.close();
});

async function recordOf(walnut: WalnutFixture, requestId: string): Promise<TopicRecord> {
  const records = await readTopic(walnut.kafka, walnut.topic, (r) => r.some((x) => x.headers.id === requestId));
  const record = records.find((x) => x.headers.id === requestId);
  if (!record) throw new Error(`no record for ${requestId}`);
  return record;
}

/**
 * Produces records to one partition, then a fresh marker key after them, and
 * waits for the marker in kvs: the partition is consumed in order, so the
 * records before it have been through the applier.
 */
async function produceThenSettle(walnut: WalnutFixture, partition: number, records: TopicRecord[]): Promise<void> {
  const marker = `marker-${randomUUID()}`;
  const producer = walnut.kafka.producer();
  await producer.connect();
  try {
    const lsn = records[0]?.headers['walnut-commit-lsn'] ?? '0/1';
    await producer.send({
      topic: walnut.topic,
      messages: [
        ...records.map((r) => ({ partition, key: r.key, value: r.value, headers: r.headers })),
        {
          partition,
          key: marker,
          value: JSON.stringify({ op: 'set', key: marker, value: 1, request_id: randomUUID() }),
          headers: { 'walnut-commit-lsn': lsn, 'walnut-seq': '0' },
        },
      ],
    });
  } finally {
    await producer.disconnect();
  }
  await waitFor('the marker after the produced records', async () => {
    const r = await walnut.pool.query('SELECT 1 FROM kvs WHERE key = $1', [marker]);
    return r.rowCount === 1;
  });
}

tombstones(
  'an older set cannot resurrect a deleted key; a newer one can; a replayed delete cannot delete it again',
  async ({ walnut, api }) => {
    const set1 = await write(api, 'PUT', '/kv/zombie', { value: 'v1' });
    await waitApplied(api, set1);
    const del = await write(api, 'DELETE', '/kv/zombie');
    assertError(await call(api, 'GET', `/kv/zombie?after=${del}`), 404, 'NOT_FOUND');

    const setRecord = await recordOf(walnut, set1);
    const delRecord = await recordOf(walnut, del);
    const tomb = await walnut.pool.query('SELECT value, version, deleted_at FROM kvs WHERE key = $1', ['zombie']);
    assert.ok(tomb.rows[0]?.deleted_at, 'the row stays as a tombstone');
    assert.is(tomb.rows[0].value, null);

    // The old set again, after the delete: the tombstone's version wins.
    await produceThenSettle(walnut, delRecord.partition, [setRecord]);
    assertError(await call(api, 'GET', '/kv/zombie'), 404, 'NOT_FOUND');
    const after = await walnut.pool.query('SELECT version, deleted_at FROM kvs WHERE key = $1', ['zombie']);
    assert.is(after.rows[0].version, tomb.rows[0].version, 'the tombstone keeps the delete’s version');
    const list = await call(api, 'GET', '/kv?prefix=zombie');
    assert.equal(list.body.items, []);

    // A newer set brings the key back.
    const set2 = await write(api, 'PUT', '/kv/zombie', { value: 'v2' });
    const back = await call(api, 'GET', `/kv/zombie?after=${set2}`);
    assert.is(back.status, 200);
    assert.is(back.body.value, 'v2');

    // The delete replayed (at-least-once delivery) is older than v2: nothing happens.
    await produceThenSettle(walnut, delRecord.partition, [delRecord]);
    const still = await call(api, 'GET', '/kv/zombie');
    assert.is(still.status, 200);
    assert.is(still.body.value, 'v2');
  },
);

tombstones('deleting a key that was never set leaves a tombstone that outranks older sets', async ({ walnut, api }) => {
  const del = await write(api, 'DELETE', '/kv/never-set');
  await waitApplied(api, del);
  const delRecord = await recordOf(walnut, del);
  const stale = {
    ...delRecord,
    value: JSON.stringify({ op: 'set', key: 'never-set', value: 'stale', request_id: randomUUID() }),
    headers: { ...delRecord.headers, 'walnut-commit-lsn': '0/1', 'walnut-seq': '0' },
  };
  await produceThenSettle(walnut, delRecord.partition, [stale]);
  assertError(await call(api, 'GET', '/kv/never-set'), 404, 'NOT_FOUND');
});

tombstones.run();
