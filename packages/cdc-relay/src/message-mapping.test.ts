import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { messageRecord } from './message-mapping.ts';

const mapping = { prefixes: ['orders', 'audit'], topicTemplate: 'outbox.message.{prefix}' };
const at = { commitLsn: '0/10', xid: 7, commitTimeMicros: 0n, seq: 0 };

test('a configured prefix routes to its topic with the prefix as key', () => {
  const rec = messageRecord(mapping, 'audit', new TextEncoder().encode('{"x":1}'), at);
  assert.is(rec?.topic, 'outbox.message.audit');
  assert.is(rec?.key, 'audit');
  assert.is(rec?.value?.toString('utf8'), '{"x":1}');
  assert.is(rec?.headers['walnut-message-prefix'], 'audit');
});

test('prefix:key carries a Kafka key', () => {
  const rec = messageRecord(mapping, 'orders:o-42', new Uint8Array([1, 2, 3]), at);
  assert.is(rec?.topic, 'outbox.message.orders');
  assert.is(rec?.key, 'o-42');
  assert.equal([...(rec?.value ?? [])], [1, 2, 3]);
});

test('other prefixes are not relayed', () => {
  assert.is(messageRecord(mapping, 'walnut-heartbeat', new Uint8Array(), at), null);
  assert.is(messageRecord(mapping, 'ordersx', new Uint8Array(), at), null);
  assert.is(messageRecord(mapping, 'orders:', new Uint8Array(), at), null);
});

test.run();
