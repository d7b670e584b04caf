import { KV_AGGREGATE_TYPE } from '@walnut/schema';
import { sql } from 'drizzle-orm';
import type { NodePgDatabase } from 'drizzle-orm/node-postgres';
import type { Logger } from 'pino';

export interface RetentionOptions {
  /** Outbox rows older than this, whose request is applied, are deleted. */
  outboxRetentionSeconds: number;
  /** Idempotency-Key records older than this are deleted. */
  idempotencyRetentionSeconds: number;
  /** Applied request rows older than this are deleted; at least outboxRetentionSeconds. */
  requestRetentionSeconds: number;
  /** Pause between sweeps once a sweep found less than a full batch. */
  intervalMs: number;
  /** Rows per DELETE: short transactions, short row locks. */
  batchRows: number;
}

/**
 * Keeps the outbox, the Idempotency-Key records and the applied requests from
 * growing forever.
 *
 * It runs in the applier rather than the API: "applied" is the applier's fact,
 * the sweep is background work like consuming, and API replicas scale with
 * traffic, which would multiply the sweeps. SKIP LOCKED lets several appliers
 * sweep at once without waiting on each other.
 *
 * Deleting outbox rows is safe for the relay: its publication publishes
 * inserts only, and an insert already in the WAL is decoded from the WAL record,
 * not read back from the table.
 */
export class RetentionSweeper {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;

  constructor(
    private readonly db: NodePgDatabase,
    private readonly options: RetentionOptions,
    private readonly log: Logger,
    private readonly onOutboxDeleted: (rows: number) => void,
  ) {}

  start(): void {
    this.schedule(0);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
  }

  /** Deletes at most one batch of each kind; returns how many rows of each went. */
  async sweepOnce(): Promise<{ outbox: number; idempotencyKeys: number; requests: number }> {
    const { batchRows, outboxRetentionSeconds, idempotencyRetentionSeconds, requestRetentionSeconds } = this.options;
    // A row whose request is gone and which is older than the request retention
    // had its request applied and pruned (or never had one): nothing waits on it.
    const outbox = await this.db.execute(sql`
      DELETE FROM outbox WHERE id IN (
        SELECT o.id FROM outbox o
         WHERE o.created_at < now() - make_interval(secs => ${outboxRetentionSeconds})
           AND o.aggregatetype = ${KV_AGGREGATE_TYPE}
           AND (EXISTS (SELECT 1 FROM requests r
                         WHERE r.request_id = (o.payload->>'request_id')::uuid AND r.applied_at IS NOT NULL)
                OR (o.created_at < now() - make_interval(secs => ${requestRetentionSeconds})
                    AND NOT EXISTS (SELECT 1 FROM requests r WHERE r.request_id = (o.payload->>'request_id')::uuid)))
         ORDER BY o.created_at LIMIT ${batchRows}
         FOR UPDATE SKIP LOCKED)`);
    const keys = await this.db.execute(sql`
      DELETE FROM idempotency_keys WHERE (principal, key) IN (
        SELECT principal, key FROM idempotency_keys
         WHERE created_at < now() - make_interval(secs => ${idempotencyRetentionSeconds})
         ORDER BY created_at LIMIT ${batchRows}
         FOR UPDATE SKIP LOCKED)`);
    // Unapplied requests stay: a request stuck short of applied is worth seeing in /status.
    const requests = await this.db.execute(sql`
      DELETE FROM requests WHERE request_id IN (
        SELECT request_id FROM requests
         WHERE created_at < now() - make_interval(secs => ${requestRetentionSeconds})
           AND applied_at IS NOT NULL
         ORDER BY created_at LIMIT ${batchRows}
         FOR UPDATE SKIP LOCKED)`);
    return { outbox: outbox.rowCount ?? 0, idempotencyKeys: keys.rowCount ?? 0, requests: requests.rowCount ?? 0 };
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.running = this.sweep().then((full) => this.schedule(full ? 0 : this.options.intervalMs));
    }, delayMs);
  }

  /** One sweep; true when a batch was full, so more rows may be waiting. */
  private async sweep(): Promise<boolean> {
    try {
      const deleted = await this.sweepOnce();
      if (deleted.outbox > 0) this.onOutboxDeleted(deleted.outbox);
      if (Object.values(deleted).some((rows) => rows > 0)) this.log.info(deleted, 'retention sweep deleted rows');
      return Object.values(deleted).some((rows) => rows === this.options.batchRows);
    } catch (error) {
      // A Postgres outage must not kill consuming; the next sweep retries.
      this.log.warn({ err: error }, 'retention sweep failed');
      return false;
    }
  }
}
