/**
 * The grouping rules alone, with an apply function that records what it was
 * given; that a shared apply really lands in `kvs` is in test/ (the applier's
 * and the pipeline's suites run every batch through it).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ApplyGroup } from './apply-group.ts';
import type { DecodedKvEvent } from './kv-message.ts';

const batch = (...keys: string[]): DecodedKvEvent[] =>
  keys.map((key, i) => ({ event: { op: 'set', key, value: i, request_id: `r-${key}` }, version: BigInt(i) }));

function recorder(refuse: (keys: string[]) => boolean = () => false) {
  const applies: string[][] = [];
  return {
    applies,
    apply: async (events: readonly DecodedKvEvent[]) => {
      const keys = events.map((e) => e.event.key);
      if (refuse(keys)) throw new Error(`refused ${keys.join(',')}`);
      applies.push(keys);
    },
  };
}

test('batches submitted in one turn share one apply, in submission order', async () => {
  const r = recorder();
  const group = new ApplyGroup(r.apply, { maxEventsPerApply: 100 });
  await Promise.all([group.submit(batch('a', 'b')), group.submit(batch('c')), group.submit(batch('d'))]);
  assert.equal(r.applies, [['a', 'b', 'c', 'd']]);
});

test('batches of later turns get applies of their own', async () => {
  const r = recorder();
  const group = new ApplyGroup(r.apply, { maxEventsPerApply: 100 });
  await group.submit(batch('a'));
  await group.submit(batch('b'));
  assert.equal(r.applies, [['a'], ['b']]);
});

test('a shared apply holds at most maxEventsPerApply events, but a larger batch still goes whole', async () => {
  const r = recorder();
  const group = new ApplyGroup(r.apply, { maxEventsPerApply: 3 });
  await Promise.all([
    group.submit(batch('a', 'b')),
    group.submit(batch('c', 'd')),
    group.submit(batch('e', 'f', 'g', 'h')),
    group.submit(batch('i')),
  ]);
  assert.equal(r.applies, [['a', 'b'], ['c', 'd'], ['e', 'f', 'g', 'h'], ['i']]);
});

test('a refused shared apply is retried batch by batch: only the bad batch fails', async () => {
  const r = recorder((keys) => keys.includes('bad'));
  const group = new ApplyGroup(r.apply, { maxEventsPerApply: 100 });
  const outcomes = await Promise.allSettled([
    group.submit(batch('a')),
    group.submit(batch('bad', 'x')),
    group.submit(batch('c')),
  ]);
  assert.equal(
    outcomes.map((o) => o.status),
    ['fulfilled', 'rejected', 'fulfilled'],
  );
  assert.match(String((outcomes[1] as PromiseRejectedResult).reason), /refused bad,x/);
  assert.equal(r.applies, [['a'], ['c']]);
});

test('a lone batch that is refused fails without a retry', async () => {
  let calls = 0;
  const group = new ApplyGroup(
    async () => {
      calls++;
      throw new Error('down');
    },
    { maxEventsPerApply: 100 },
  );
  const [outcome] = await Promise.allSettled([group.submit(batch('a'))]);
  assert.match(String((outcome as PromiseRejectedResult).reason), /down/);
  assert.is(calls, 1);
});

test.run();
