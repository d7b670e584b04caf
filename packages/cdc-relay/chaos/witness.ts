import { parseLsn } from '@walnut/schema';
import type pg from 'pg';
import type { WitnessRow } from './delivery-check.ts';

/** Where the WAL is now: phases are cut by it. */
export async function currentLsn(pool: pg.Pool): Promise<bigint> {
  const r = await pool.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn');
  return parseLsn(r.rows[0]?.lsn as string);
}

/**
 * The outbox rows in commit order from the test_decoding slot. A COMMIT row's
 * lsn is the end of its commit record, which is what phases are cut by.
 */
export async function committedRows(pool: pg.Pool, slot: string): Promise<WitnessRow[]> {
  const changes = await pool.query<{ lsn: string; id: string | null; key: string | null }>(
    `SELECT lsn::text AS lsn,
            substring(data from $2) AS id,
            substring(data from $3) AS key
       FROM pg_logical_slot_get_changes($1, NULL, NULL)
      WHERE data LIKE 'COMMIT%' OR data LIKE 'table public.outbox: INSERT:%'`,
    [slot, `id\\[uuid\\]:'([0-9a-f-]{36})'`, `aggregateid\\[text\\]:'([^']*)'`],
  );
  const rows: WitnessRow[] = [];
  let open: Array<{ id: string; key: string }> = [];
  for (const change of changes.rows) {
    if (change.id === null) {
      const commitLsn = parseLsn(change.lsn);
      for (const row of open) rows.push({ ...row, commitLsn });
      open = [];
    } else {
      open.push({ id: change.id, key: change.key ?? '' });
    }
  }
  return rows;
}
