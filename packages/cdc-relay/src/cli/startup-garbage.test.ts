import { getHeapSpaceStatistics, getHeapStatistics } from 'node:v8';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { compactingGarbageCollection, fullGarbageCollection, startupGarbageCollection } from './startup-garbage.ts';

/** Old objects nothing refers to any more, too many for a scavenge to be the one that frees them. */
function oldGarbage(): void {
  let keep: object[] | null = Array.from({ length: 200_000 }, (_, i) => ({ i, s: `garbage ${i}` }));
  for (let round = 0; round < 3; round++) keep = keep.map((o) => ({ ...o }));
  keep = null;
}

test('the collection is there without --expose-gc, and frees what nothing refers to', () => {
  assert.is((globalThis as { gc?: unknown }).gc, undefined, 'the test runs without --expose-gc');
  const gc = fullGarbageCollection();
  assert.type(gc, 'function');
  oldGarbage();
  const before = getHeapStatistics().used_heap_size;
  gc?.();
  const after = getHeapStatistics().used_heap_size;
  assert.ok(after < before - 10 * 2 ** 20, `heap used ${before} -> ${after}`);
});

/**
 * Old-generation pages where every other object stays alive: each page half used, which a
 * plain full collection leaves where it is (it moves objects off nearly empty pages only).
 */
function fragmentedOldGeneration(): object[] {
  const all = Array.from({ length: 300_000 }, (_, i) => ({ i, s: `object ${i}` }));
  fullGarbageCollection()?.();
  fullGarbageCollection()?.();
  const survivors = all.filter((_, i) => i % 2 === 0);
  all.length = 0;
  return survivors;
}

function oldSpaceCommitted(): number {
  return getHeapSpaceStatistics().find((space) => space.space_name === 'old_space')?.physical_space_size ?? 0;
}

test('the compacting collection gives back the pages a plain one leaves partly used', () => {
  const survivors = fragmentedOldGeneration();
  fullGarbageCollection()?.();
  const afterPlain = oldSpaceCommitted();
  compactingGarbageCollection();
  const afterCompacting = oldSpaceCommitted();
  assert.is(survivors.length, 150_000);
  assert.ok(afterCompacting < afterPlain - 5 * 2 ** 20, `old space ${afterPlain} -> ${afterCompacting}`);
});

test('it runs once the relay streams, not before', async () => {
  const collectedAt: number[] = [];
  const real = fullGarbageCollection();
  (globalThis as { gc?: () => void }).gc = () => {
    collectedAt.push(performance.now());
    real?.();
  };
  try {
    const onState = startupGarbageCollection(10);
    for (const state of ['connecting', 'standby', 'backoff'] as const) onState(state);
    await new Promise((r) => setTimeout(r, 100));
    assert.is(collectedAt.length, 0);
    onState('streaming');
    await new Promise((r) => setTimeout(r, 100));
    assert.is(collectedAt.length, 1);
    onState('backoff');
    onState('streaming');
    await new Promise((r) => setTimeout(r, 100));
    assert.is(collectedAt.length, 1, 'once per process');
  } finally {
    delete (globalThis as { gc?: unknown }).gc;
  }
});

test.run();
