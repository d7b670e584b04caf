import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { allocWire, WIRE_HEAD_ROOM, WireRecord } from './wire-record.ts';

// Records' bytes are cut from shared slabs that come back once every record cut
// from them is released (acked). Whatever the order of releases, a record that
// is not released must keep its bytes: a slab reused too early would send one
// row's payload under another's key.

let made = 0;
function record(size: number): WireRecord {
  const { wire, slab } = allocWire(size);
  const n = made++;
  wire.fill(n % 251);
  return new WireRecord('t', wire, size, { commitLsn: BigInt(n), seq: 0 }, undefined, slab);
}

const intact = (r: WireRecord) => r.wire.every((b) => b === Number(r.position.commitLsn) % 251);

test('unreleased records keep their bytes while others are released and their slabs reused', () => {
  const live: WireRecord[] = [];
  for (let i = 0; i < 20_000; i++) {
    live.push(record(500 + (i % 1_500)));
    // Acks come in batches, mostly in order, sometimes leaving a straggler behind.
    if (live.length > 300) {
      const batch = live.splice(i % 7 === 0 ? 1 : 0, 200);
      for (const r of batch) {
        assert.ok(intact(r), `record ${r.position.commitLsn} changed before its release`);
        r.release();
      }
    }
  }
  for (const r of live) assert.ok(intact(r), `record ${r.position.commitLsn} changed before its release`);
});

test('a slab is written again once its records are released, not before', () => {
  const first = record(1_000);
  const base = first.wire.buffer;
  // Fill the rest of the slab, then cut one more: a new slab, as the first still has a live record.
  const sameSlab: WireRecord[] = [];
  let next = record(1_000);
  while (next.wire.buffer === base) {
    sameSlab.push(next);
    next = record(1_000);
  }
  const second = next.wire.buffer;
  assert.is.not(second, base);
  for (const r of sameSlab) r.release();
  // One record of the old slab is still live: it must not come back.
  const fill: WireRecord[] = [];
  let r = record(1_000);
  while (r.wire.buffer === second) {
    fill.push(r);
    r = record(1_000);
  }
  assert.is.not(r.wire.buffer, base, 'a slab with a live record was reused');
  assert.ok(intact(first));
  first.release();
  next.release();
  for (const f of fill) f.release();
  // Now both are free: the next slab switch takes one of them.
  let reused = record(1_000);
  const seen = new Set([reused.wire.buffer]);
  while (seen.size < 2) {
    reused.release();
    reused = record(1_000);
    seen.add(reused.wire.buffer);
  }
  assert.ok(reused.wire.buffer === base || reused.wire.buffer === second, 'a released slab was not reused');
});

test('a released record refuses to be read; large records have bytes of their own', () => {
  const r = record(100);
  r.release();
  assert.throws(() => r.wire, /read after its bytes were released/);
  assert.throws(() => r.value, /read after its bytes were released/);
  r.release(); // a second release gives nothing back twice

  const big = allocWire(WIRE_HEAD_ROOM + 200_000);
  assert.is(big.slab, null);
  assert.is(big.wire.byteOffset, 0);
});

test.run();
