import { parseLsn, RELAY_HEADERS } from '@walnut/schema';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { BufferRow, type RowValues } from './row-values.ts';
import { relayEnv } from './config.ts';
import { headersAsText, kafkaRecord, topicProblem } from './kafka-record.ts';
import { commitTimeText, type OutboxMapping, outboxRowMapper, topicRenderer } from './outbox-mapping.ts';
import type { Relation } from './pgoutput.ts';

const mapping: OutboxMapping = {
  schema: 'public',
  table: 'outbox',
  columns: { id: 'id', key: 'aggregateid', payload: 'payload' },
  topicTemplate: 'outbox.event.{aggregatetype}',
  headerColumns: [{ column: 'type', header: 'type' }],
};
const tx = { commitLsn: parseLsn('0/16B3748'), xid: 42, commitTimeMicros: 1_700_000_000_123_456n, seq: 3 };

function relation(payloadTypeOid = 3802): Relation {
  const columns = ['id', 'aggregatetype', 'aggregateid', 'type', 'payload'].map((name) => ({
    name,
    typeOid: name === 'payload' ? payloadTypeOid : 25,
  }));
  return { oid: 1, schema: 'public', name: 'outbox', columns };
}

const row = (values: Array<string | null>): RowValues =>
  new BufferRow(values.map((v) => (v === null ? null : Buffer.from(v))));

test('routes by aggregate type, keys by aggregate id, passes the payload through byte for byte', () => {
  const payload = '{"b": 1, "a": [1, 2]}';
  const rec = outboxRowMapper(mapping, relation())(row(['e1', 'order', 'o-7', 'created', payload]), tx);
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
  const rec = outboxRowMapper(mapping, relation(17))(row(['e1', 'x', 'k', null, '\\x00ff10']), tx);
  assert.equal([...(rec.value ?? [])], [0, 255, 16]);
});

test('null columns: no key, no value, no header', () => {
  const rec = outboxRowMapper(mapping, relation())(row([null, 'x', null, null, null]), tx);
  assert.is(rec.key, undefined);
  assert.is(rec.value, undefined);
  assert.not.ok('id' in headersAsText(rec));
  assert.match(rec.source, '0/16B3748');
});

test('header columns are renamed with column:header, and a column the table lacks is skipped', () => {
  const renamed: OutboxMapping = {
    ...mapping,
    headerColumns: relayEnv.parse({
      DATABASE_URL: 'postgres://x',
      KAFKA_BROKERS: 'k:9092',
      RELAY_HEADER_COLUMNS: 'type:event-type,aggregatetype:traceparent,tracingspancontext',
    }).RELAY_HEADER_COLUMNS,
  };
  const rec = outboxRowMapper(renamed, relation())(row(['e1', 'order', 'o-7', 'created', '{}']), tx);
  const headers = headersAsText(rec);
  assert.is(headers['event-type'], 'created');
  assert.is(headers.traceparent, 'order');
  assert.not.ok('type' in headers);
  assert.not.ok('tracingspancontext' in headers);
  assert.is(
    relayEnv.safeParse({ DATABASE_URL: 'x', KAFKA_BROKERS: 'k', RELAY_HEADER_COLUMNS: 'a:b:c' }).success,
    false,
  );
});

test('size counts headers and framing, not only key and value', () => {
  const rec = outboxRowMapper(mapping, relation())(row(['e1', 'x', 'k', 't', '{}']), tx);
  let headerBytes = 0;
  for (const [k, v] of rec.headers) headerBytes += k.length + v.length;
  assert.ok(headerBytes > 60, `six headers carry ${headerBytes} bytes`);
  assert.ok(rec.sizeBytes >= 1 + 2 + headerBytes + 6 * 2, `sizeBytes ${rec.sizeBytes} covers the headers`);
});

test('transaction-wide headers are encoded once per transaction', () => {
  const position = { ...tx };
  const map = outboxRowMapper(mapping, relation());
  const a = map(row(['e1', 'x', 'k', null, '{}']), position);
  const b = map(row(['e2', 'x', 'k', null, '{}']), { ...position, seq: 4 });
  assert.is(headersAsText(a)['walnut-commit-lsn'], headersAsText(b)['walnut-commit-lsn']);
  assert.is(headersAsText(b)['walnut-seq'], '4');
  // A transaction's first record is written from a shared scratch buffer; another transaction's
  // first record must not show through in what the first transaction keeps.
  // Fresh positions, as the stream makes one per transaction (tx above holds encodings by now).
  const first = { commitLsn: tx.commitLsn, xid: 42, commitTimeMicros: tx.commitTimeMicros, seq: 0 };
  const other = { commitLsn: parseLsn('7/ABC'), xid: 99, commitTimeMicros: tx.commitTimeMicros, seq: 0 };
  const records = [map(row(['f0', 'x', 'k', null, '{}']), first)];
  first.seq = 1;
  records.push(map(row(['f1', 'x', 'k', null, '{}']), first));
  const o = map(row(['o0', 'x', 'k', null, '{}']), other);
  first.seq = 2;
  records.push(map(row(['f2', 'x', 'k', null, '{}']), first));
  assert.equal(
    records.map((r) => [headersAsText(r)['walnut-commit-lsn'], headersAsText(r)['walnut-xid']]),
    Array(3).fill(['0/16B3748', '42']),
  );
  assert.equal([headersAsText(o)['walnut-commit-lsn'], headersAsText(o)['walnut-xid']], ['7/ABC', '99']);
});

test("transaction headers are Postgres's LSN text, the xid and seq in decimal, at every digit count", () => {
  const map = outboxRowMapper(mapping, relation());
  const lsns = ['0/0', '0/F', '0/10', '16/B374D848', 'FFFFFFFF/FFFFFFFF', '1/0', 'ABCDEF/12345678'];
  const numbers = [0, 9, 10, 99, 100, 123_456, 4_294_967_295];
  for (const [i, lsn] of lsns.entries()) {
    for (const n of numbers) {
      const position = {
        commitLsn: parseLsn(lsn),
        xid: n,
        commitTimeMicros: 1_700_000_000_123_456n + BigInt(i),
        seq: n,
      };
      const rec = map(row([`e${i}`, 'x', 'k', 't', '{}']), position);
      const headers = headersAsText(rec);
      assert.is(headers['walnut-commit-lsn'], lsn);
      assert.is(headers['walnut-xid'], String(n));
      assert.is(headers['walnut-seq'], String(n));
      assert.is(headers['walnut-commit-time'], commitTimeText(position.commitTimeMicros));
      const same = kafkaRecord(rec.topic, rec.key, rec.value, rec.headers, rec.source, rec.position);
      assert.is(rec.sizeBytes, same.sizeBytes, `sizeBytes at ${lsn}, ${n}`);
    }
  }
});

test('a topic placeholder naming an empty column makes the row unmappable, not a silent drop', () => {
  const render = topicRenderer('t.{aggregatetype}', () => 0);
  assert.match(JSON.stringify(render(new BufferRow([null]))), /aggregatetype/);
  assert.match(JSON.stringify(render(new BufferRow([Buffer.alloc(0)]))), /aggregatetype/);
  assert.is(topicRenderer('static-topic', () => -1)(new BufferRow([])), 'static-topic');
  assert.is(topicRenderer('a.{x}.b.{y}', (c) => (c === 'x' ? 0 : 1))(row(['1', '2'])), 'a.1.b.2');
  const rec = outboxRowMapper(mapping, relation())(row(['e1', '', 'k', 't', '{}']), tx);
  assert.match(rec.unmappable ?? '', 'needs column "aggregatetype"');
  assert.is(rec.value?.toString(), '{}', 'the payload is kept for the stand-in');
});

test('a topic rendered from the same bytes as the row before is reused, and any change of them shows', () => {
  const render = topicRenderer('t.{x}.{y}', (c) => (c === 'x' ? 0 : 1));
  const bytes = [Buffer.from('a'), Buffer.from('b')];
  assert.is(render(new BufferRow(bytes)), 't.a.b');
  // The row before is overwritten (the stream's next read): what was kept is a copy.
  for (const b of bytes) b.fill(0x7a);
  assert.is(render(new BufferRow([Buffer.from('a'), Buffer.from('b')])), 't.a.b');
  assert.is(render(new BufferRow([Buffer.from('a'), Buffer.from('bb')])), 't.a.bb');
  assert.is(render(new BufferRow([Buffer.from('c'), Buffer.from('bb')])), 't.c.bb');
  assert.match(JSON.stringify(render(new BufferRow([Buffer.from('c'), null]))), /needs column \\"y\\"/);
  assert.is(render(new BufferRow([Buffer.from('c'), Buffer.from('bb')])), 't.c.bb');
});

test('a bytea payload in another format makes the row unmappable', () => {
  const rec = outboxRowMapper(mapping, relation(17))(row(['e1', 'x', 'k', null, 'raw']), tx);
  assert.match(rec.unmappable ?? '', 'hex');
});

// Issue 24: aggregatetype `eu/orders` rendered `outbox.event.eu/orders`; the broker refused it
// and the relay restarted 535 times in two minutes.
test('topic names Kafka would refuse are found before sending', () => {
  assert.is(topicProblem('outbox.event.order_v2-x'), undefined);
  assert.is(topicProblem('a'.repeat(249)), undefined);
  assert.match(topicProblem('outbox.event.eu/orders') ?? '', 'A-Z a-z 0-9 . _ -');
  assert.match(topicProblem('outbox.event.ü') ?? '', 'not a legal Kafka topic name');
  assert.match(topicProblem('a'.repeat(250)) ?? '', '250 characters');
  assert.ok(topicProblem(''));
  assert.ok(topicProblem('.'));
  assert.ok(topicProblem('..'));
});

test('a record keeps its own bytes: the row values it came from may be overwritten (the next socket read)', () => {
  const bytes = ['e1', 'order', 'o-7', 'created', '{"a":1}'].map((v) => Buffer.from(v));
  const rec = outboxRowMapper(mapping, relation())(new BufferRow(bytes), tx);
  for (const value of bytes) value.fill(0);
  assert.is(rec.topic, 'outbox.event.order');
  assert.is(rec.key?.toString(), 'o-7');
  assert.is(rec.value?.toString(), '{"a":1}');
  assert.is(headersAsText(rec).id, 'e1');
  assert.is(headersAsText(rec).type, 'created');
  assert.is(rec.source, 'outbox row e1');
});

test('consecutive transactions carry their own commit time, to the millisecond', () => {
  // The text is kept per millisecond; a change of millisecond, backwards too, must show.
  const micros = [1_700_000_000_123_456n, 1_700_000_000_123_999n, 1_700_000_000_124_000n, 1_699_999_999_999_999n];
  const rows = micros.map((commitTimeMicros, i) =>
    headersAsText(
      outboxRowMapper(mapping, relation())(row([`e${i}`, 'order', 'o-7', 'created', '{}']), {
        commitLsn: tx.commitLsn + BigInt(i),
        xid: tx.xid + i,
        commitTimeMicros,
        seq: 0,
      }),
    ),
  );
  assert.equal(
    rows.map((h) => h[RELAY_HEADERS.commitTime]),
    ['2023-11-14T22:13:20.123Z', '2023-11-14T22:13:20.123Z', '2023-11-14T22:13:20.124Z', '2023-11-14T22:13:19.999Z'],
  );
  assert.is(commitTimeText(1_000n), '1970-01-01T00:00:00.001Z');
});

test.run();
