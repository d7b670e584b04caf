import { SteadyLoad } from './steady-load.ts';

/**
 * A steady write load through the API: `ratePerSecond` POST /kv over a fixed
 * set of keys, at most `maxInFlight` at once. Failures (Postgres restarting)
 * are counted, not retried: the outbox table is the truth of what committed.
 */
export class ApiLoad extends SteadyLoad {
  accepted = 0;
  failed = 0;
  private seq = 0;

  constructor(
    private readonly apiUrl: string,
    private readonly opts: { ratePerSecond: number; keys: number; maxInFlight: number },
  ) {
    super(opts);
  }

  protected send(): Promise<void> {
    const n = this.seq++;
    return fetch(`${this.apiUrl}/kv`, {
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
      });
  }
}
