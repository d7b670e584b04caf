import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { headersAsText } from './kafka-record.ts';
import { type OutboxMapping, outboxRecord, renderTopic } from './outbox-mapping.ts';

const mapping: OutboxMapping = {
  schema: 'public',
  table: 'outbox',
  columns: { id: 'id', key: 'aggregateid', payload: 'payload' },
  topicTemplate: 'outbox.event.{aggregatetype}',
  headerColumns: ['type'],
};
const tx = { commitLsn: '0/16B3748', xid: 42, commitTimeMicros: 1_700_000_000_123_456n, seq: 3 };

test('routes by aggregate type, keys by aggregate id, passes the payload through', () => {
  const payload = '{"b": 1, "a": [1, 2]}';
  const rec = outboxRecord(
    mapping,
    { id: 'e1', aggregatetype: 'order', aggregateid: 'o-7', type: 'created', payload },
    new Map([['payload', 3802]]),
    tx,
  );
  assert.is(rec.topic, 'outbox.event.order');
  assert.is(rec.key?.toString('utf8'), 'o-7');
  assert.is(rec.value?.toString('utf8'), payload);
  assert.equal(headersAsText(rec), {
    'walnut-commit-lsn': '0/16B3748',
    'walnut-seq': '3',
    'walnut-xid': '42',
    'walnut-commit-time': '2023-11-14T22:13:20.123Z',
    id: 'e1',
    type: 'created',
  });
});

test('bytea payloads are decoded to their bytes', () => {
  const rec = outboxRecord(
    mapping,
    { id: 'e1', aggregatetype: 'x', aggregateid: 'k', payload: '\\x00ff10' },
    new Map([['payload', 17]]),
    tx,
  );
  assert.equal([...(rec.value ?? [])], [0, 255, 16]);
});

test('size counts headers and framing, not only key and value', () => {
  const rec = outboxRecord(
    mapping,
    { id: 'e1', aggregatetype: 'x', aggregateid: 'k', type: 't', payload: '{}' },
    new Map([['payload', 3802]]),
    tx,
  );
  let headerBytes = 0;
  for (const [k, v] of rec.headers) headerBytes += k.length + v.length;
  assert.ok(headerBytes > 60, `six headers carry ${headerBytes} bytes`);
  assert.ok(rec.sizeBytes >= 1 + 2 + headerBytes + 6 * 2, `sizeBytes ${rec.sizeBytes} covers the headers`);
});

test('transaction-wide headers are encoded once per transaction', () => {
  const position = { ...tx };
  const row = { id: 'e1', aggregatetype: 'x', aggregateid: 'k', payload: '{}' };
  const a = outboxRecord(mapping, row, new Map(), position);
  const b = outboxRecord(mapping, { ...row, id: 'e2' }, new Map(), { ...position, seq: 4 });
  assert.is(headersAsText(a)['walnut-commit-lsn'], headersAsText(b)['walnut-commit-lsn']);
  assert.is(headersAsText(b)['walnut-seq'], '4');
});

test('a topic placeholder naming an empty column is an error, not a silent drop', () => {
  assert.throws(() => renderTopic('t.{aggregatetype}', { aggregatetype: null }), /aggregatetype/);
  assert.is(renderTopic('static-topic', {}), 'static-topic');
});

test.run();
