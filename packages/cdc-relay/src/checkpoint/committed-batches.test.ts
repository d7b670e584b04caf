import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { CommittedBatches, type LogBatch } from './committed-batches.ts';

const TRANSACTIONAL = 0x10;
const CONTROL = 0x20;

function data(producerId: bigint, name: string, transactional = true): LogBatch & { name: string } {
  return { name, producerId, attributes: transactional ? TRANSACTIONAL : 0, records: [{ key: null }] };
}

function marker(producerId: bigint, type: 'commit' | 'abort'): LogBatch & { name: string } {
  const key = Buffer.alloc(4);
  key.writeInt16BE(0, 0);
  key.writeInt16BE(type === 'commit' ? 1 : 0, 2);
  return { name: type, producerId, attributes: TRANSACTIONAL | CONTROL, records: [{ key }] };
}

function read(batches: Array<LogBatch & { name: string }>): string[] {
  const filter = new CommittedBatches<LogBatch & { name: string }>();
  return batches.flatMap((b) => filter.push(b)).map((b) => b.name);
}

test('committed transactions are kept, aborted ones dropped, open ones not yet given', () => {
  assert.equal(
    read([data(1n, 'a1'), data(1n, 'a2'), marker(1n, 'commit'), data(1n, 'b1'), marker(1n, 'abort'), data(1n, 'c1')]),
    ['a1', 'a2'],
  );
});

// Regression: the library's read_committed filter keyed aborted ranges by producer id
// alone, so of two aborted transactions of one producer id the first leaked through.
test('several aborted transactions of one producer id around a committed one', () => {
  const log = [
    data(7n, 'x1'),
    marker(7n, 'abort'),
    data(7n, 'y1'),
    data(7n, 'y2'),
    marker(7n, 'commit'),
    data(7n, 'z1'),
    marker(7n, 'abort'),
  ];
  assert.equal(read(log), ['y1', 'y2']);
});

test('interleaved producers are decided by their own markers; plain batches pass at once', () => {
  const log = [data(1n, 'p1'), data(2n, 'q1'), data(3n, 'plain', false), marker(2n, 'commit'), marker(1n, 'abort')];
  assert.equal(read(log), ['plain', 'q1']);
});

test.run();
