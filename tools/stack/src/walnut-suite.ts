import { suite, type Test } from 'uvu';
import { type WalnutFixture, walnutFixture } from './walnut-fixture.ts';
import type { WalnutProcess } from './walnut-processes.ts';

/**
 * A uvu suite whose tests share one walnutFixture, created before the first
 * test and closed after the last (if it was created). For files that need
 * nothing else set up; a file with more in its context writes its own
 * before/after around walnutFixture.
 */
export function walnutSuite(
  title: string,
  name: string,
  services?: Parameters<typeof walnutFixture>[1],
): Test<{ walnut: WalnutFixture }> {
  const tests = suite<{ walnut: WalnutFixture }>(title);
  tests.before(async (ctx) => {
    ctx.walnut = await walnutFixture(name, services);
  });
  tests.after(async ({ walnut }) => {
    await walnut?.close();
  });
  return tests;
}

/**
 * For processes a test starts itself (walnut.startRelay's are the fixture's):
 * each one passed to the returned function is SIGKILLed after the test,
 * whatever it asserted, so a failed test leaves none running, holding the slot
 * the fixture drops. uvu runs hooks in the order they were added: call this
 * before adding an after.each that closes the fixture.
 */
export function killAfterEach<T>(tests: Test<T>): <P extends WalnutProcess>(process: P) => P {
  const started: WalnutProcess[] = [];
  tests.after.each(async () => {
    await Promise.all(started.splice(0).map((p) => p.stop('SIGKILL')));
  });
  return (process) => {
    started.push(process);
    return process;
  };
}
