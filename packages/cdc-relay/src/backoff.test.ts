import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { backoffDelayMs, SessionBackoff } from './backoff.ts';

const options = { baseMs: 200, maxMs: 10_000, healthyMs: 30_000 };

/** A clock the test moves, and jitter pinned to its low end (the shortest waits). */
function backoff() {
  let now = 0;
  const b = new SessionBackoff(
    options,
    () => now,
    () => 0,
  );
  return { b, advance: (ms: number) => (now += ms) };
}

test('delays double up to the cap, and none is under half its ceiling', () => {
  assert.equal(
    [0, 1, 2, 3, 4, 5, 6, 7].map((a) => backoffDelayMs(a, options, () => 0)),
    [100, 200, 400, 800, 1600, 3200, 5000, 5000],
  );
  assert.is(
    backoffDelayMs(40, options, () => 1),
    10_000,
  );
});

// Issue 24: every `streaming` reset the attempts, so a fault striking each session a moment
// after it started streaming restarted the relay every 150-400 ms, 535 times in two minutes.
test('a session that fails soon after streaming counts as a failure', () => {
  const { b, advance } = backoff();
  const delays: number[] = [];
  for (let i = 0; i < 8; i++) {
    b.streaming();
    advance(300);
    delays.push(b.next());
  }
  assert.equal(delays, [100, 200, 400, 800, 1600, 3200, 5000, 5000]);
});

test('a fault that persists gives at most a handful of sessions a minute', () => {
  const { b, advance } = backoff();
  let elapsed = 0;
  let sessions = 0;
  while (elapsed < 120_000) {
    sessions++;
    b.streaming();
    advance(300);
    const delay = b.next();
    advance(delay);
    elapsed += 300 + delay;
  }
  // The ramp (delays of 100 ms to 3.2 s), then one session per 5.3 s at worst.
  assert.ok(sessions <= 30, `${sessions} sessions in 2 minutes`);
});

test('a session that streamed healthy for long enough starts the backoff over', () => {
  const { b, advance } = backoff();
  for (let i = 0; i < 10; i++) b.next();
  assert.is(b.next(), 5_000);
  b.streaming();
  advance(options.healthyMs);
  assert.is(b.next(), 100, 'one blip after a long healthy session reconnects fast');
});

test('a failure before streaming keeps counting', () => {
  const { b } = backoff();
  assert.equal([b.next(), b.next(), b.next()], [100, 200, 400]);
});

test('atCap: a cause only a human can fix waits the longest at once', () => {
  const { b } = backoff();
  assert.is(b.next({ atCap: true }), 5_000);
  assert.is(new SessionBackoff(options, Date.now, () => 1).next({ atCap: true }), 10_000);
});

test.run();
