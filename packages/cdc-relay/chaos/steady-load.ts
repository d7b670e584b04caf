/**
 * The pacing of the chaos suites' write loads: `ratePerSecond` sends spread
 * over 10 ms ticks, at most `maxInFlight` at once; the budget a stall saves up
 * is capped at one window, so no larger burst follows it. What one send is, and
 * how it counts its outcome, is the subclass's.
 */
export abstract class SteadyLoad {
  private inFlight = 0;
  private timer: NodeJS.Timeout | null = null;
  private pending = new Set<Promise<void>>();

  constructor(private readonly pace: { ratePerSecond: number; maxInFlight: number }) {}

  start(): void {
    const tickMs = 10;
    const perTick = this.pace.ratePerSecond / (1000 / tickMs);
    let budget = 0;
    this.timer = setInterval(() => {
      budget += perTick;
      while (budget >= 1 && this.inFlight < this.pace.maxInFlight) {
        budget -= 1;
        this.fire();
      }
      budget = Math.min(budget, this.pace.maxInFlight);
    }, tickMs);
  }

  /** Stops sending and waits for the sends in flight to settle. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await Promise.all(this.pending);
  }

  /** One write; counts its own success or failure and resolves either way. */
  protected abstract send(): Promise<void>;

  private fire(): void {
    this.inFlight++;
    const sent = this.send().finally(() => {
      this.inFlight--;
      this.pending.delete(sent);
    });
    this.pending.add(sent);
  }
}
