/**
 * Capped exponential backoff with full jitter (AWS architecture blog,
 * "Exponential Backoff And Jitter"): many relays restarting after one outage
 * spread out instead of reconnecting in lockstep.
 */
export function backoffDelayMs(
  attempt: number,
  opts: { baseMs: number; maxMs: number },
  random: () => number = Math.random,
): number {
  const ceiling = Math.min(opts.maxMs, opts.baseMs * 2 ** Math.min(attempt, 30));
  return Math.round(random() * ceiling);
}
