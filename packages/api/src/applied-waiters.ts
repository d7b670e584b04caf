import { APPLIED_CHANNEL, resolvePgUrl } from '@walnut/schema';
import pg from 'pg';
import type { Logger } from 'pino';

export type WaitOutcome = 'applied' | 'timeout' | 'unknown';

/**
 * Read-your-writes without polling per reader. The applier NOTIFYs the ids it
 * marked applied, once per batch, at commit; this holds ONE LISTEN session for
 * the whole process and wakes the in-memory waiters of those ids.
 *
 * The session is a direct connection (API_LISTEN_DATABASE_URL): PgBouncer in
 * transaction mode hands each transaction to any server connection, so a
 * LISTEN through it would be lost. Notifications sent while the session was
 * down are lost too, so after every (re)connect the ids still waited on are
 * checked with one query.
 */
export class AppliedWaiters {
  private readonly waiters = new Map<string, Set<() => void>>();
  private client: pg.Client | undefined;
  private stopped = false;
  private reconnectTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly opts: {
      listenUrl: string;
      /** Pooled queries: the initial and post-reconnect checks. */
      pool: pg.Pool;
      log: Logger;
      reconnectMs?: number;
    },
  ) {}

  /** Waiting readers, for /metrics. */
  get size(): number {
    let n = 0;
    for (const set of this.waiters.values()) n += set.size;
    return n;
  }

  /** Connects; a failure is logged and retried in the background, like a lost session. */
  async start(): Promise<void> {
    await this.connect().catch((error) => {
      this.opts.log.warn({ err: error }, 'LISTEN connection failed; retrying');
      this.scheduleReconnect();
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.reconnectTimer);
    const client = this.client;
    this.client = undefined;
    await client?.end().catch(() => {});
  }

  /**
   * Resolves 'applied' once the request is applied, 'timeout' after timeoutMs,
   * 'unknown' if no such request exists. The waiter is registered before the
   * first check, so a notification between the two is not missed.
   */
  async waitApplied(requestId: string, timeoutMs: number): Promise<WaitOutcome> {
    let wake!: () => void;
    const woken = new Promise<'applied'>((resolve) => {
      wake = () => resolve('applied');
    });
    const set = this.waiters.get(requestId) ?? new Set();
    set.add(wake);
    this.waiters.set(requestId, set);
    let timer: NodeJS.Timeout | undefined;
    try {
      const { rows } = await this.opts.pool.query<{ applied: boolean }>(
        'SELECT applied_at IS NOT NULL AS applied FROM requests WHERE request_id = $1',
        [requestId],
      );
      if (!rows[0]) return 'unknown';
      if (rows[0].applied) return 'applied';
      const timedOut = new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), timeoutMs);
      });
      return await Promise.race([woken, timedOut]);
    } finally {
      clearTimeout(timer);
      set.delete(wake);
      if (set.size === 0 && this.waiters.get(requestId) === set) this.waiters.delete(requestId);
    }
  }

  private wake(requestIds: Iterable<string>): void {
    for (const id of requestIds) {
      const set = this.waiters.get(id);
      if (set) for (const wake of set) wake();
    }
  }

  private async connect(): Promise<void> {
    // Resolved on every (re)connect: after a failover the LISTEN moves to the promoted primary.
    const client = new pg.Client({ connectionString: await resolvePgUrl(this.opts.listenUrl) });
    client.on('notification', (msg) => {
      if (msg.channel === APPLIED_CHANNEL && msg.payload) this.wake(msg.payload.split(','));
    });
    const lost = (error?: Error) => {
      if (this.client !== client) return;
      this.client = undefined;
      client.end().catch(() => {});
      if (this.stopped) return;
      this.opts.log.warn({ err: error }, 'LISTEN connection lost; reconnecting');
      this.scheduleReconnect();
    };
    client.on('error', lost);
    client.on('end', () => lost());
    await client.connect();
    await client.query(`LISTEN ${pg.escapeIdentifier(APPLIED_CHANNEL)}`);
    this.client = client;
    await this.recheck().catch((error) => this.opts.log.warn({ err: error }, 'recheck after LISTEN failed'));
  }

  private scheduleReconnect(): void {
    if (this.stopped) return;
    this.reconnectTimer = setTimeout(() => {
      this.connect().catch((error) => {
        this.opts.log.warn({ err: error }, 'LISTEN reconnect failed');
        this.scheduleReconnect();
      });
    }, this.opts.reconnectMs ?? 1_000);
  }

  /** One query for every id still waited on: catches notifications missed while disconnected. */
  private async recheck(): Promise<void> {
    if (this.waiters.size === 0) return;
    const { rows } = await this.opts.pool.query<{ request_id: string }>(
      'SELECT request_id FROM requests WHERE request_id = ANY($1::uuid[]) AND applied_at IS NOT NULL',
      [[...this.waiters.keys()]],
    );
    this.wake(rows.map((row) => row.request_id));
  }
}
