import type pg from 'pg';

/**
 * Commits `rows` outbox rows in one transaction, as an app writing in bulk
 * would: aggregate ids `${keyPrefix}0` … cycling through `keys` of them, so
 * the rows spread over partitions, and a payload `{ "g": n }` numbering them.
 */
export async function insertOutboxRows(
  pool: Pick<pg.Pool, 'query'>,
  rows: number,
  shape: { aggregateType: string; type: string; keyPrefix: string; keys: number },
): Promise<void> {
  await pool.query(
    `INSERT INTO outbox (id, aggregatetype, aggregateid, type, payload)
     SELECT gen_random_uuid(), $2, $3::text || (g % $4::int), $5, jsonb_build_object('g', g)
       FROM generate_series(1, $1::int) g`,
    [rows, shape.aggregateType, shape.keyPrefix, shape.keys, shape.type],
  );
}
