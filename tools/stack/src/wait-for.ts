import { StackError } from './errors.ts';

/**
 * Polls a condition until it yields a value (anything but undefined/false) or
 * the deadline passes. The harness and the tests wait on conditions like this,
 * never on fixed sleeps.
 *
 * A probe that throws is retried (a refused connection is the normal "not yet"),
 * except a StackError that is not retryable: that one is rethrown at once, so a
 * process that died does not cost the whole deadline.
 */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined | false>,
  opts: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<T> {
  const timeoutMs = opts.timeoutMs ?? 60_000;
  const intervalMs = opts.intervalMs ?? 100;
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined && value !== false) return value;
    } catch (error) {
      if (error instanceof StackError && !error.retryable) throw error;
      lastError = error;
    }
    if (Date.now() >= deadline) {
      const reason = lastError instanceof Error ? `; last error: ${lastError.message}` : '';
      throw new StackError('TIMEOUT', `timed out after ${timeoutMs} ms waiting for ${what}${reason}`, {
        cause: lastError,
      });
    }
    await new Promise((resolve) => setTimeout(resolve, Math.min(intervalMs, Math.max(0, deadline - Date.now()))));
  }
}

/**
 * A fixed delay: for pacing a load or letting a fault land mid-stream, and for
 * giving a wrong outcome (a late duplicate) time to show. Never to wait for
 * something to happen: that is waitFor.
 */
export function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
