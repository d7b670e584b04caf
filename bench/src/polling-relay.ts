/**
 * The outbox relay most outbox projects ship, as the baseline: poll for unsent
 * rows with FOR UPDATE SKIP LOCKED in batches, publish them, mark them sent, and
 * sleep between empty polls. It lives only here; Walnut's relay never SELECTs.
 */
import type { Kafka } from 'kafkajs';
import type pg from 'pg';

export const POLL_BATCH = 100;
export const POLL_INTERVAL_MS = 100;

/** The baseline needs a `sent_at` column, so it gets its own copy of the outbox table. */
export async function createPollingOutbox(pool: pg.Pool, table: string): Promise<void> {
  await pool.query(`CREATE TABLE ${table} (LIKE outbox INCLUDING ALL, sent_at timestamptz)`);
  await pool.query(`CREATE INDEX ON ${table} (created_at) WHERE sent_at IS NULL`);
}

export class PollingRelay {
  sent = 0;
  /** Set when the loop died; the benchmark reports it instead of waiting out its deadline. */
  error: unknown;
  private stopped = false;
  private loop: Promise<void> | undefined;

  constructor(private readonly opts: { pool: pg.Pool; kafka: Kafka; table: string; topic: string }) {}

  start(): void {
    this.loop = this.run().catch((error: unknown) => {
      this.error = error;
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
  }

  private async run(): Promise<void> {
    // Same delivery settings as Walnut's relay: idempotent, acks=all, one request in flight.
    const producer = this.opts.kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    const client = await this.opts.pool.connect();
    try {
      while (!this.stopped) {
        await client.query('BEGIN');
        const { rows } = await client.query<{ id: string; aggregateid: string; type: string; payload: string }>(
          `SELECT id, aggregateid, type, payload::text AS payload FROM ${this.opts.table}
           WHERE sent_at IS NULL ORDER BY created_at LIMIT ${POLL_BATCH} FOR UPDATE SKIP LOCKED`,
        );
        if (rows.length === 0) {
          await client.query('COMMIT');
          await new Promise((resolve) => setTimeout(resolve, POLL_INTERVAL_MS));
          continue;
        }
        await producer.send({
          topic: this.opts.topic,
          acks: -1,
          messages: rows.map((r) => ({ key: r.aggregateid, value: r.payload, headers: { id: r.id, type: r.type } })),
        });
        await client.query(`UPDATE ${this.opts.table} SET sent_at = now() WHERE id = ANY($1::uuid[])`, [
          rows.map((r) => r.id),
        ]);
        await client.query('COMMIT');
        this.sent += rows.length;
      }
    } finally {
      client.release();
      await producer.disconnect();
    }
  }
}
