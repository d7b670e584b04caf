/**
 * A steady write load through the API: `ratePerSecond` POST /kv over a fixed
 * set of keys, at most `maxInFlight` at once. Failures (Postgres restarting)
 * are counted, not retried: the outbox table is the truth of what committed.
 */
export class ApiLoad {
  accepted = 0;
  failed = 0;
  private seq = 0;
  private inFlight = 0;
  private timer: NodeJS.Timeout | null = null;
  private pending = new Set<Promise<void>>();

  constructor(
    private readonly apiUrl: string,
    private readonly opts: { ratePerSecond: number; keys: number; maxInFlight: number },
  ) {}

  start(): void {
    const tickMs = 10;
    const perTick = this.opts.ratePerSecond / (1000 / tickMs);
    let budget = 0;
    this.timer = setInterval(() => {
      budget += perTick;
      while (budget >= 1 && this.inFlight < this.opts.maxInFlight) {
        budget -= 1;
        this.fire();
      }
      budget = Math.min(budget, this.opts.maxInFlight);
    }, tickMs);
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await Promise.all(this.pending);
  }

  private fire(): void {
    const n = this.seq++;
    this.inFlight++;
    const request = fetch(`${this.apiUrl}/kv`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ key: `chaos-${n % this.opts.keys}`, value: { n } }),
      signal: AbortSignal.timeout(10_000),
    })
      .then(async (res) => {
        await res.arrayBuffer();
        if (res.status === 202) this.accepted++;
        else this.failed++;
      })
      .catch(() => {
        this.failed++;
      })
      .finally(() => {
        this.inFlight--;
        this.pending.delete(request);
      });
    this.pending.add(request);
  }
}
