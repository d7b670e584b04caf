/**
 * The outbox relay most outbox projects ship, as the baseline: poll for unsent
 * rows with FOR UPDATE SKIP LOCKED in batches, publish them, mark them sent, and
 * sleep between empty polls. It lives only here; Walnut's relay never SELECTs.
 */
import { formatLsn, RELAY_HEADERS } from '@walnut/schema';
import type { Kafka, Producer } from 'kafkajs';
import type pg from 'pg';

export const POLL_BATCH = 100;
export const POLL_INTERVAL_MS = 100;

/**
 * What a polling outbox needs beyond Walnut's: a `sent_at` mark, a partial index
 * so a poll reads only unsent rows, and `poll_seq`, the insert order that polls
 * follow (a bigserial, as such outboxes usually have). Identity columns fill
 * themselves, so the API and bench_fill write the table unchanged.
 */
export async function addPollingColumns(pool: pg.Pool, table: string): Promise<void> {
  await pool.query(
    `ALTER TABLE ${table} ADD COLUMN sent_at timestamptz, ADD COLUMN poll_seq bigint GENERATED ALWAYS AS IDENTITY`,
  );
  await pool.query(`CREATE INDEX ON ${table} (poll_seq) WHERE sent_at IS NULL`);
}

/** The drain gives the baseline its own copy of the outbox table, next to Walnut's. */
export async function createPollingOutbox(pool: pg.Pool, table: string): Promise<void> {
  await pool.query(`CREATE TABLE ${table} (LIKE outbox INCLUDING ALL)`);
  await addPollingColumns(pool, table);
}

export class PollingRelay {
  sent = 0;
  /** Set when the loop died; the benchmark reports it instead of waiting out its deadline. */
  error: unknown;
  private stopped = false;
  private loop: Promise<void> | undefined;
  private producer: Producer | undefined;
  private client: pg.PoolClient | undefined;

  constructor(private readonly opts: { pool: pg.Pool; kafka: Kafka; table: string; topic: string }) {}

  /**
   * Connects, then polls in the background: a drain's clock starts when this
   * resolves, as the Walnut relay's does at "streaming".
   */
  async start(): Promise<void> {
    // Walnut's relay's delivery settings (idempotent, acks=all); one request in flight, as each poll waits for its ack.
    this.producer = this.opts.kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await this.producer.connect();
    this.client = await this.opts.pool.connect();
    this.loop = this.run(this.producer, this.client).catch((error: unknown) => {
      this.error = error;
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
    // A loop that died may have left its transaction open: that connection is not reused.
    this.client?.release(this.error !== undefined);
    await this.producer?.disconnect();
  }

  private async run(producer: Producer, client: pg.PoolClient): Promise<void> {
    while (!this.stopped) {
      await client.query('BEGIN');
      const { rows } = await client.query<{
        id: string;
        aggregateid: string;
        type: string;
        payload: string;
        poll_seq: string;
      }>(
        `SELECT id, aggregateid, type, payload::text AS payload, poll_seq FROM ${this.opts.table}
         WHERE sent_at IS NULL ORDER BY poll_seq LIMIT ${POLL_BATCH} FOR UPDATE SKIP LOCKED`,
      );
      if (rows.length === 0) {
        await client.query('COMMIT');
        await new Promise((resolve) => setTimeout(resolve, POLL_INTERVAL_MS));
        continue;
      }
      await producer.send({
        topic: this.opts.topic,
        acks: -1,
        messages: rows.map((r) => ({ key: r.aggregateid, value: r.payload, headers: positionHeaders(r) })),
      });
      await client.query(`UPDATE ${this.opts.table} SET sent_at = now() WHERE id = ANY($1::uuid[])`, [
        rows.map((r) => r.id),
      ]);
      await client.query('COMMIT');
      this.sent += rows.length;
    }
  }
}

/**
 * Walnut's applier decodes a version from the commit-LSN and sequence headers,
 * which only a WAL reader knows. The baseline stands in poll_seq, printed as an
 * LSN, with sequence 0: it only has to decode. It orders nothing that matters
 * here, because every benchmark write has its own key, so no two versions are
 * ever compared (and insert order is not commit order, which is exactly what a
 * polling outbox cannot offer).
 */
function positionHeaders(row: { id: string; type: string; poll_seq: string }): Record<string, string> {
  return {
    [RELAY_HEADERS.eventId]: row.id,
    type: row.type,
    [RELAY_HEADERS.commitLsn]: formatLsn(BigInt(row.poll_seq)),
    [RELAY_HEADERS.seq]: '0',
  };
}
