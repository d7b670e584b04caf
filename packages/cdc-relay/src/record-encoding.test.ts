import { createRecord, createRecordsBatch, Reader, readRecord } from '@platformatic/kafka';
import { parseLsn } from '@walnut/schema';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { kafkaRecord } from './kafka-record.ts';
import { outboxRowMapper } from './outbox-mapping.ts';
import { BufferRow, WalTuple } from './row-values.ts';
import { WIRE_HEAD_ROOM, WireRecord } from './wire-record.ts';

// patches/@platformatic__kafka@1.35.0.patch writes each record into one Buffer
// instead of a Writer of small Buffers. Whatever the sizes (varints of 1 to 3
// bytes, null keys and values, no headers), the library's own reader must read
// back exactly what went in.
test('records written in one buffer read back field for field', () => {
  const sizes = [0, 1, 63, 64, 127, 128, 8_191, 8_192, 70_000];
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(Math.random() * xs.length)] as T;
  for (let i = 0; i < 2_000; i++) {
    const bytes = (n: number) => Buffer.alloc(n, i % 251);
    const headers =
      i % 3 === 0
        ? undefined
        : new Map(Array.from({ length: i % 9 }, (_, h) => [Buffer.from(`h${h}`), bytes(pick(sizes.slice(0, 6)))]));
    const key = i % 4 === 0 ? undefined : bytes(pick(sizes.slice(0, 7)));
    const value = i % 5 === 0 ? undefined : bytes(pick(sizes));
    const first = 1_700_000_000_000n;
    const timestamp = first + BigInt(pick([0, 1, 1_000, 10_000_000]));
    const offsetDelta = pick([0, 1, 63, 64, 8_192, 100_000]);
    const encoded = createRecord({ topic: 't', key, value, headers, timestamp } as never, offsetDelta, first).buffer;
    const read = readRecord(Reader.from(encoded));
    assert.is(read.length, encoded.length - varIntSize(read.length), `record ${i}: length`);
    assert.is(read.timestampDelta, timestamp - first);
    assert.is(read.offsetDelta, offsetDelta);
    assert.equal(read.key ?? undefined, key && key.length > 0 ? key : (key ?? undefined), `record ${i}: key`);
    assert.equal(
      read.value ?? undefined,
      value && value.length > 0 ? value : (value ?? undefined),
      `record ${i}: value`,
    );
    assert.equal(
      read.headers.map(([k, v]) => [k?.toString(), v?.length]),
      [...(headers ?? [])].map(([k, v]) => [k.toString(), v.length]),
    );
  }
});

// The relay's outbox records are encoded once, straight from the row's bytes (wire-record.ts), and
// the patched producer only writes each one's head in front: a batch of them must be the bytes the
// library makes of the same records given as key, value and headers.
test('wire-encoded outbox records batch to the same bytes as the plain records', () => {
  const mapping = {
    schema: 'public',
    table: 'outbox',
    columns: { id: 'id', key: 'aggregateid', payload: 'payload' },
    topicTemplate: 'outbox.event.{aggregatetype}',
    headerColumns: [{ column: 'type', header: 'type' }],
  };
  const columns = ['id', 'aggregatetype', 'aggregateid', 'type', 'payload'].map((name) => ({ name, typeOid: 25 }));
  const map = outboxRowMapper(mapping, { oid: 1, schema: 'public', name: 'outbox', columns });
  const tx = { commitLsn: parseLsn('0/16B3748'), xid: 42, commitTimeMicros: 1_700_000_000_123_456n, seq: 0 };
  const wire: unknown[] = [];
  const plain: unknown[] = [];
  for (const [i, size] of [0, 1, 63, 64, 200, 8_191, 70_000].entries()) {
    tx.seq = i * 997;
    const values = [`e${i}`, 'order', i % 2 ? null : `o-${i}`, i % 3 ? 'created' : null, 'p'.repeat(size)].map((v) =>
      v === null ? null : Buffer.from(v),
    );
    const record = map(new BufferRow(values), tx);
    assert.ok(record instanceof WireRecord);
    // The same row read in place in a WAL message, as the stream hands it over.
    const inPlace = map(walTuple(values), tx);
    assert.ok(inPlace instanceof WireRecord);
    // After the head room, which the producer fills.
    assert.ok(
      inPlace.wire.subarray(WIRE_HEAD_ROOM).equals(record.wire.subarray(WIRE_HEAD_ROOM)),
      `record ${i}: the same bytes from the WAL message`,
    );
    const same = kafkaRecord(record.topic, record.key, record.value, record.headers, record.source, record.position);
    assert.is(record.sizeBytes, same.sizeBytes, `record ${i}: sizeBytes`);
    // A replay's copy has no slab of its own but may share one's bytes: its key is read from those.
    assert.equal(record.withTopic('other').key, record.key, `record ${i}: key of a copy`);
    const timestamp = 1_700_000_000_000n;
    // The record itself, as the relay sends it: the producer finds its bytes by wireStore.
    record.partition = 0;
    record.timestamp = timestamp;
    wire.push(record);
    plain.push({ ...same, partition: 0, timestamp });
  }
  const batch = (messages: unknown[]) => createRecordsBatch(messages as never, {}).buffer;
  assert.equal(batch(wire), batch(plain));
});

/** The values laid out as in a pgoutput insert, after some other bytes, and read in place. */
function walTuple(values: Array<Buffer | null>): WalTuple {
  const parts: Buffer[] = [Buffer.from('header')];
  const spans: number[] = [];
  let at = parts[0]?.length ?? 0;
  for (const value of values) {
    parts.push(Buffer.from('t0000'));
    at += 5;
    spans.push(at, value ? value.length : -1);
    if (value) {
      parts.push(value);
      at += value.length;
    }
  }
  return new WalTuple(Buffer.concat(parts), spans);
}

function varIntSize(n: number): number {
  let v = ((n << 1) ^ (n >> 31)) >>> 0;
  let size = 1;
  while (v >= 0x80) {
    v >>>= 7;
    size++;
  }
  return size;
}

test.run();
