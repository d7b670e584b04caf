import { randomUUID } from 'node:crypto';
import { KV_AGGREGATE_TYPE } from '@walnut/schema';
import type pg from 'pg';
import { SteadyLoad } from './steady-load.ts';

/**
 * A steady write load straight into the outbox table, without the API: the
 * relay is what is under test. `ratePerSecond` transactions, each one INSERT
 * of 1-5 rows over `keys` keys, at most `maxInFlight` at once. A failed
 * transaction is counted, not retried: the outbox (and the test_decoding
 * witness) is the truth of what committed.
 */
export class OutboxLoad extends SteadyLoad {
  committedTx = 0;
  committedRows = 0;
  failed = 0;
  private seq = 0;

  constructor(
    private readonly pool: pg.Pool,
    private readonly opts: { ratePerSecond: number; keys: number; maxInFlight: number },
  ) {
    super(opts);
  }

  protected send(): Promise<void> {
    const rows = 1 + Math.floor(Math.random() * 5);
    const values: string[] = [];
    const params: unknown[] = [];
    for (let i = 0; i < rows; i++) {
      const n = this.seq++;
      const key = `k-${Math.floor(Math.random() * this.opts.keys)}`;
      // A KV set event, so the applier can apply it and kvs can be checked too.
      params.push(key, JSON.stringify({ op: 'set', key, value: { n }, request_id: randomUUID() }));
      values.push(`(gen_random_uuid(), '${KV_AGGREGATE_TYPE}', $${2 * i + 1}, 'chaos.put', $${2 * i + 2}::jsonb)`);
    }
    // One statement outside a transaction block: one transaction of `rows` rows.
    return this.pool
      .query(`INSERT INTO outbox (id, aggregatetype, aggregateid, type, payload) VALUES ${values.join(', ')}`, params)
      .then(() => {
        this.committedTx++;
        this.committedRows += rows;
      })
      .catch(() => {
        this.failed++;
      });
  }
}
