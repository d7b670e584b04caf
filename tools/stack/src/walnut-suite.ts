import { suite, type Test } from 'uvu';
import { type WalnutFixture, walnutFixture } from './walnut-fixture.ts';

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
