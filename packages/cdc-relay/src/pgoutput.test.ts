import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { PgoutputDecoder } from './pgoutput.ts';

/** Builds protocol messages the way pgoutput writes them. */
const int16 = (n: number) => Buffer.from([(n >> 8) & 0xff, n & 0xff]);
const int32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
};
const int64 = (n: bigint) => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(n);
  return b;
};
const cstring = (s: string) => Buffer.concat([Buffer.from(s), Buffer.from([0])]);

const relationMessage = Buffer.concat([
  Buffer.from('R'),
  int32(16384),
  cstring('public'),
  cstring('outbox'),
  Buffer.from('d'),
  int16(2),
  Buffer.from([1]),
  cstring('id'),
  int32(2950),
  int32(-1),
  Buffer.from([0]),
  cstring('payload'),
  int32(3802),
  int32(-1),
]);

/** An insert into relationMessage's table: a text value per column, null as pgoutput's 'n'. */
const insertMessage = (columns: Array<string | null>) =>
  Buffer.concat([
    Buffer.from('I'),
    int32(16384),
    Buffer.from('N'),
    int16(columns.length),
    ...columns.map((value) =>
      value === null
        ? Buffer.from('n')
        : Buffer.concat([Buffer.from('t'), int32(Buffer.byteLength(value)), Buffer.from(value)]),
    ),
  ]);

test('begin, relation, insert and commit decode to what the relay needs', () => {
  const decoder = new PgoutputDecoder();
  const begin = decoder.decode(
    Buffer.concat([Buffer.from('B'), int64(0x1_0000_00a0n), int64(1_000_000n), int32(3_000_000_000)]),
  );
  assert.equal(begin, {
    tag: 'begin',
    commitLsn: 0x1_0000_00a0n,
    commitTimeMicros: 946_684_800_000_000n + 1_000_000n,
    xid: 3_000_000_000,
  });
  const relation = decoder.decode(relationMessage);
  assert.is(relation.tag, 'relation');
  const socket = insertMessage(['e1', '{"a":1}']);
  const insert = decoder.decode(socket);
  if (insert.tag !== 'insert') throw new Error(insert.tag);
  assert.equal(
    [0, 1, 2].map((i) => insert.values.column(i)?.toString() ?? null),
    ['e1', '{"a":1}', null],
  );
  // No copy: the values are read in the message (the mapper copies what a record keeps).
  assert.is(insert.values.column(0)?.buffer, socket.buffer);
  assert.equal([insert.values.byteLength(0), insert.values.byteLength(1), insert.values.byteLength(2)], [2, 7, -1]);
  const copied = Buffer.alloc(9, 0x2e);
  assert.is(insert.values.copyTo(1, copied, 1), 8);
  assert.is(copied.toString(), '.{"a":1}.');
  assert.ok(insert.values.equals(0, Buffer.from('e1')));
  assert.not.ok(insert.values.equals(0, Buffer.from('e2')));
  assert.is(insert.relation.name, 'outbox');
  const commit = decoder.decode(
    Buffer.concat([Buffer.from('C'), Buffer.from([0]), int64(0xa0n), int64(0xc8n), int64(0n)]),
  );
  assert.equal(commit, { tag: 'commit', commitEndLsn: 0xc8n });
});

test('nulls, and a message without its relation is an error', () => {
  const decoder = new PgoutputDecoder();
  decoder.decode(relationMessage);
  const insert = decoder.decode(insertMessage(['x', null]));
  assert.equal(insert.tag === 'insert' && [0, 1].map((i) => insert.values.column(i)?.toString() ?? null), ['x', null]);
  assert.is(insert.tag === 'insert' && insert.values.byteLength(1), -1);
  assert.throws(
    () => new PgoutputDecoder().decode(Buffer.concat([Buffer.from('I'), int32(1), Buffer.from('N'), int16(0)])),
    /relation/,
  );
});

test('a message found after a header is decoded in place, and 64-bit fields beyond 2^53 keep every bit', () => {
  const decoder = new PgoutputDecoder();
  const header = Buffer.alloc(25, 0x77);
  const begin = decoder.decode(
    Buffer.concat([
      header,
      Buffer.from('B'),
      int64(0xffff_ffff_0000_00a0n),
      int64(-1_000_000n & 0xffff_ffff_ffff_ffffn),
      int32(7),
    ]),
    25,
  );
  assert.equal(begin, {
    tag: 'begin',
    commitLsn: 0xffff_ffff_0000_00a0n,
    commitTimeMicros: 946_684_800_000_000n - 1_000_000n,
    xid: 7,
  });
  decoder.decode(Buffer.concat([header, relationMessage]), 25);
  const insert = decoder.decode(Buffer.concat([header, insertMessage(['e9'])]), 25);
  assert.is(insert.tag === 'insert' && insert.values.column(0)?.toString(), 'e9');
  const commit = decoder.decode(
    Buffer.concat([header, Buffer.from('C'), Buffer.from([0]), int64(0n), int64(0x20_0000_0000_0001n), int64(0n)]),
    25,
  );
  assert.equal(commit, { tag: 'commit', commitEndLsn: 0x20_0000_0000_0001n });
});

test('a message ends at end, not at the buffer: the next message in the chunk is never read as its own', () => {
  const decoder = new PgoutputDecoder();
  const relation = Buffer.concat([relationMessage, cstring('next message')]);
  decoder.decode(relation, 0, relationMessage.length);
  const insert = insertMessage(['e9', null]);
  const chunk = Buffer.concat([Buffer.from('dxxxx'), insert, Buffer.from('d'), int32(999), Buffer.from('more')]);
  const decoded = decoder.decode(chunk, 5, 5 + insert.length);
  assert.equal(decoded.tag === 'insert' && [0, 1].map((i) => decoded.values.column(i)?.toString() ?? null), [
    'e9',
    null,
  ]);
  // Cut short at end, each of these would read the next message's bytes if end were the buffer's.
  for (let cut = 1; cut < insert.length; cut++) {
    assert.throws(() => decoder.decode(chunk, 5, 5 + insert.length - cut), /ends early/, `insert cut by ${cut}`);
  }
  assert.throws(() => decoder.decode(relation, 0, relationMessage.length - 1), /ends/);
  const begin = Buffer.concat([Buffer.from('B'), int64(1n), int64(2n), int32(3)]);
  assert.throws(() => decoder.decode(Buffer.concat([begin, begin]), 0, begin.length - 1), /ends early/);
  const commit = Buffer.concat([Buffer.from('C'), Buffer.from([0]), int64(0n), int64(1n), int64(0n)]);
  assert.throws(() => decoder.decode(Buffer.concat([commit, commit]), 0, commit.length - 1), /ends early/);
  assert.throws(() => decoder.decode(chunk, 5, 5), /empty/);
});

test('logical messages, and kinds the relay ignores', () => {
  const decoder = new PgoutputDecoder();
  const message = decoder.decode(
    Buffer.concat([
      Buffer.from('M'),
      Buffer.from([1]),
      int64(0x10n),
      cstring('orders:o-1'),
      int32(3),
      Buffer.from('abc'),
    ]),
  );
  assert.equal(
    message.tag === 'message' && [
      message.transactional,
      message.prefix,
      message.content.toString(),
      message.messageLsn,
    ],
    [true, 'orders:o-1', 'abc', 0x10n],
  );
  assert.equal(decoder.decode(Buffer.from('U')), { tag: 'ignored', kind: 'U' });
  assert.throws(() => decoder.decode(Buffer.from('Z')), /unknown pgoutput message/);
});

test.run();
