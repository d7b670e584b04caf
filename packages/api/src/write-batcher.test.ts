/**
 * The batching rules alone, with a commit function that records what it was
 * given; that the shared transactions really commit is in test/kv-api.test.ts.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { PlainWrite } from './commit-write.ts';
import { WriteBatcher } from './write-batcher.ts';

const set = (key: string) => [{ op: 'set' as const, key, value: 1 }];

function recorder(fail: (writes: readonly PlainWrite[]) => boolean = () => false) {
  const commits: string[][] = [];
  let release: () => void = () => {};
  let gate = Promise.resolve();
  return {
    commits,
    /** Holds every commit until open() is called. */
    hold() {
      gate = new Promise<void>((resolve) => {
        release = resolve;
      });
    },
    open: () => release(),
    commit: async (writes: readonly PlainWrite[]) => {
      await gate;
      if (fail(writes)) throw new Error(`refused ${writes.map((w) => w.ops[0]?.key).join(',')}`);
      commits.push(writes.map((w) => w.ops[0]?.key ?? ''));
    },
  };
}

test('a lone write commits alone and gets its own request id', async () => {
  const r = recorder();
  const batcher = new WriteBatcher(r.commit, { maxConcurrentCommits: 2, maxOpsPerCommit: 100 });
  const [a, b] = [await batcher.submit(set('a')), await batcher.submit(set('b'))];
  assert.equal(r.commits, [['a'], ['b']]);
  assert.is.not(a, b);
});

test('writes arriving while every slot commits share the next transaction, in arrival order', async () => {
  const r = recorder();
  const batcher = new WriteBatcher(r.commit, { maxConcurrentCommits: 1, maxOpsPerCommit: 100 });
  r.hold();
  const first = batcher.submit(set('first'));
  await new Promise((resolve) => setImmediate(resolve));
  const rest = ['k1', 'k2', 'k3'].map((k) => batcher.submit(set(k)));
  await new Promise((resolve) => setImmediate(resolve));
  assert.is(batcher.pending, 4);
  r.open();
  await Promise.all([first, ...rest]);
  assert.equal(r.commits, [['first'], ['k1', 'k2', 'k3']]);
  assert.is(batcher.pending, 0);
});

test('a shared transaction holds at most maxOpsPerCommit ops, but a larger write still goes', async () => {
  const r = recorder();
  const batcher = new WriteBatcher(r.commit, { maxConcurrentCommits: 1, maxOpsPerCommit: 2 });
  const big = [1, 2, 3].map((i) => ({ op: 'set' as const, key: `big${i}`, value: i }));
  await Promise.all([
    batcher.submit(set('a')),
    batcher.submit(set('b')),
    batcher.submit(set('c')),
    batcher.submit(big),
  ]);
  assert.equal(r.commits, [['a', 'b'], ['c'], ['big1']]);
});

test('when a shared transaction fails, only the write Postgres refuses fails', async () => {
  const r = recorder((writes) => writes.some((w) => w.ops[0]?.key === 'bad'));
  const batcher = new WriteBatcher(r.commit, { maxConcurrentCommits: 1, maxOpsPerCommit: 100 });
  const results = await Promise.allSettled(['a', 'bad', 'c'].map((k) => batcher.submit(set(k))));
  assert.equal(
    results.map((x) => x.status),
    ['fulfilled', 'rejected', 'fulfilled'],
  );
  assert.equal(r.commits, [['a'], ['c']]);
});

test.run();
