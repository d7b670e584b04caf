import { createRecord, Reader, readRecord } from '@platformatic/kafka';
import { test } from 'uvu';
import * as assert from 'uvu/assert';

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
