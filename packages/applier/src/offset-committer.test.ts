import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { OffsetCommitter, type PartitionOffset } from './offset-committer.ts';

const at = (partition: number, offset: number): PartitionOffset => ({ topic: 't', partition, offset: String(offset) });

function coordinator() {
  const calls: PartitionOffset[][] = [];
  let fail = 0;
  let release: () => void = () => {};
  let gate: Promise<void> | null = null;
  return {
    calls,
    failNext: (n: number) => {
      fail = n;
    },
    hold: () => {
      gate = new Promise<void>((resolve) => {
        release = resolve;
      });
    },
    open: () => release(),
    commit: async (offsets: PartitionOffset[]) => {
      calls.push(offsets);
      if (gate) await gate;
      gate = null;
      if (fail-- > 0) throw new Error('coordinator not available');
    },
  };
}

test('one commit in flight; what arrives meanwhile goes next, newest offset per partition', async () => {
  const c = coordinator();
  const committer = new OffsetCommitter(c.commit, () => {});
  c.hold();
  committer.applied(at(0, 10));
  committer.applied(at(0, 20));
  committer.applied(at(1, 5));
  committer.applied(at(0, 30));
  assert.equal(c.calls, [[at(0, 10)]]);
  c.open();
  await committer.flush();
  assert.equal(c.calls, [[at(0, 10)], [at(0, 30), at(1, 5)]]);
});

test('a failed commit is retried, and a newer offset that arrived meanwhile wins', async () => {
  const c = coordinator();
  const errors: unknown[] = [];
  const committer = new OffsetCommitter(c.commit, (e) => errors.push(e), 10);
  c.failNext(1);
  c.hold();
  committer.applied(at(0, 10));
  committer.applied(at(1, 7));
  committer.applied(at(0, 11));
  c.open();
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.is(errors.length, 1);
  const last = [...(c.calls.at(-1) ?? [])].sort((a, b) => a.partition - b.partition);
  assert.equal(last, [at(0, 11), at(1, 7)]);
});

test('commits start at least minIntervalMs apart; flush does not wait for the interval', async () => {
  const c = coordinator();
  const committer = new OffsetCommitter(c.commit, () => {}, 10, 60);
  committer.applied(at(0, 1));
  await new Promise((resolve) => setTimeout(resolve, 5));
  committer.applied(at(0, 2));
  committer.applied(at(1, 1));
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.equal(c.calls, [[at(0, 1)]], 'the second commit waits for the interval');
  await new Promise((resolve) => setTimeout(resolve, 60));
  assert.equal(c.calls, [[at(0, 1)], [at(0, 2), at(1, 1)]]);
  committer.applied(at(0, 3));
  await committer.flush();
  assert.equal(c.calls.at(-1), [at(0, 3)], 'flush commits at once');
});

test.run();
