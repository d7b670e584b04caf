import type pg from 'pg';

/** Every benchmark row carries this many bytes of payload (a jsonb string of 'x'). */
export const PAYLOAD_BYTES = 1024;
/** Keys spread over the topic's partitions, as the API's keys would be. */
const KEYS = 1_000;

/**
 * Installs the procedure that writes the workload. A procedure can COMMIT between
 * rows, so N one-row transactions cost one round trip instead of N: the benchmark
 * measures the relays, not the client that loads Postgres.
 */
export async function installWorkload(pool: pg.Pool): Promise<void> {
  await pool.query(`
    CREATE OR REPLACE PROCEDURE bench_fill(tbl regclass, n int, per_tx int, pad int) LANGUAGE plpgsql AS $$
    DECLARE
      payload jsonb := jsonb_build_object('v', repeat('x', pad));
    BEGIN
      FOR t IN 0 .. (n / per_tx) - 1 LOOP
        EXECUTE format(
          'INSERT INTO %s (id, aggregatetype, aggregateid, type, payload)
           SELECT gen_random_uuid(), ''kv'', ''k'' || ((g + $3) %% ${KEYS}), ''bench'', $1
           FROM generate_series(1, $2) g', tbl)
        USING payload, per_tx, t * per_tx;
        COMMIT;
      END LOOP;
    END $$`);
  await pool.query('CREATE TABLE IF NOT EXISTS bench_flush (at timestamptz NOT NULL)');
}

/**
 * Commits `rows` rows into `table` in transactions of `rowsPerTx` rows and
 * returns the WAL insert position after the last commit.
 * synchronous_commit=off for this session only: the fill is setup, and waiting
 * for 50,000 fsyncs would measure the disk, not what follows.
 */
export async function fill(
  pool: pg.Pool,
  table: string,
  rows: number,
  rowsPerTx: number,
  payloadBytes = PAYLOAD_BYTES,
): Promise<{ seconds: number; endLsn: string }> {
  const client = await pool.connect();
  try {
    await client.query('SET synchronous_commit = off');
    // Postgres prints the payload as {"v": "xxx…"}: 9 bytes of JSON around the pad.
    const started = performance.now();
    await client.query('CALL bench_fill($1, $2, $3, $4)', [table, rows, rowsPerTx, payloadBytes - 9]);
    const seconds = (performance.now() - started) / 1000;
    // Logical decoding sends only flushed WAL, and the WAL writer flushes asynchronous commits
    // up to 3 × wal_writer_delay (600 ms) late: that wait would land in pg_recvlogical's time.
    // One synchronous commit that writes WAL flushes everything before it. (bench_flush is in no
    // publication, so no relay sees it.)
    await client.query('SET synchronous_commit = on');
    await client.query('INSERT INTO bench_flush VALUES (now())');
    const { rows: r } = await client.query<{ lsn: string }>('SELECT pg_current_wal_insert_lsn()::text AS lsn');
    const endLsn = r[0]?.lsn;
    if (!endLsn) throw new Error('pg_current_wal_insert_lsn() returned no row');
    return { seconds, endLsn };
  } finally {
    client.release();
  }
}
