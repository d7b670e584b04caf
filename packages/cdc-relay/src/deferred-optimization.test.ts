import { setFlagsFromString } from 'node:v8';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { allowOptimization, deferOptimization, optimizationDeferred } from './deferred-optimization.ts';

setFlagsFromString('--allow-natives-syntax');
/** V8's own answer (%GetOptimizationStatus): a bit set per tier the function's code is in. */
const status = new Function('f', 'return %GetOptimizationStatus(f)') as (f: unknown) => number;
const COMPILED = (1 << 4) | (1 << 5) | (1 << 6) | (1 << 15); // optimized, Maglev, TurboFan, Sparkplug
const TURBOFANNED = 1 << 6;

/** Hot enough for V8 to tier up within a few thousand calls. */
function hot(n: number): number {
  let sum = 0;
  for (let i = 0; i < n; i++) sum += (i * 7) % 13;
  return sum;
}

async function runHot(rounds: number, until?: () => boolean): Promise<void> {
  for (let round = 0; round < rounds && !until?.(); round++) {
    for (let call = 0; call < 2_000; call++) hot(500);
    // TurboFan compiles on a background thread and installs the code between tasks.
    await new Promise((resolve) => setImmediate(resolve));
  }
}

test('tier flags given to node or in NODE_OPTIONS are left alone', () => {
  deferOptimization(['--jitless'], '');
  assert.not.ok(optimizationDeferred());
  deferOptimization([], '--max-semi-space-size=4 --no-turbofan');
  assert.not.ok(optimizationDeferred());
  allowOptimization();
  assert.not.ok(optimizationDeferred(), 'allowing what was not deferred does nothing');
});

test('no function is compiled while deferred; the hot one is optimized once allowed', async () => {
  deferOptimization([], '');
  assert.ok(optimizationDeferred());
  try {
    await runHot(20);
    assert.is(status(hot) & COMPILED, 0, `status ${status(hot).toString(2)} while deferred`);
  } finally {
    allowOptimization();
  }
  assert.not.ok(optimizationDeferred());
  await runHot(200, () => (status(hot) & TURBOFANNED) !== 0);
  assert.ok(status(hot) & TURBOFANNED, `status ${status(hot).toString(2)} once allowed`);
});

test.run();
