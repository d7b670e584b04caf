import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { headersAsText } from './kafka-record.ts';
import { messageRecord } from './message-mapping.ts';

const mapping = { prefixes: ['orders', 'audit'], topicTemplate: 'outbox.message.{prefix}' };
const at = { commitLsn: 0x10n, xid: 7, commitTimeMicros: 0n, seq: 0 };

test('a configured prefix routes to its topic with the prefix as key', () => {
  const rec = messageRecord(mapping, 'audit', new TextEncoder().encode('{"x":1}'), at);
  assert.is(rec?.topic, 'outbox.message.audit');
  assert.is(rec?.key?.toString('utf8'), 'audit');
  assert.is(rec?.value?.toString('utf8'), '{"x":1}');
  assert.is(rec && headersAsText(rec)['walnut-message-prefix'], 'audit');
});

test('prefix:key carries a Kafka key', () => {
  const rec = messageRecord(mapping, 'orders:o-42', new Uint8Array([1, 2, 3]), at);
  assert.is(rec?.topic, 'outbox.message.orders');
  assert.is(rec?.key?.toString('utf8'), 'o-42');
  assert.equal([...(rec?.value ?? [])], [1, 2, 3]);
});

// Regression: the payload was a view into pg-protocol's receive buffer, which the
// next socket read overwrites while the record still waits to be produced.
test('the payload is a copy, not a view into the buffer it was parsed from', () => {
  const socketBuffer = Buffer.from('xx{"n":1}yy');
  const content = socketBuffer.subarray(2, 9);
  const rec = messageRecord(mapping, 'audit', content, at);
  socketBuffer.fill(0);
  assert.is(rec?.value?.toString('utf8'), '{"n":1}');
});

test('other prefixes are not relayed', () => {
  assert.is(messageRecord(mapping, 'walnut-heartbeat', new Uint8Array(), at), null);
  assert.is(messageRecord(mapping, 'ordersx', new Uint8Array(), at), null);
  assert.is(messageRecord(mapping, 'orders:', new Uint8Array(), at), null);
});

test.run();
