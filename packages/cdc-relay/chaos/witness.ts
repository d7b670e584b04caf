import { parseLsn } from '@walnut/schema';
import type { WitnessRow } from '@walnut/stack';
import type pg from 'pg';

/**
 * The outbox rows in commit order from the test_decoding slot. A COMMIT row's
 * lsn is the end of its commit record, which is what phases are cut by.
 */
export async function committedRows(pool: pg.Pool, slot: string): Promise<WitnessRow[]> {
  return (await readWitness(pool, slot, 'get')).rows;
}

/**
 * The slot's outbox inserts grouped by transaction, each row with its commit's
 * LSN, and the last commit read (as text). 'get' consumes what it reads, 'peek'
 * leaves the slot where it is.
 */
async function readWitness(
  pool: pg.Pool,
  slot: string,
  read: 'get' | 'peek',
): Promise<{ rows: WitnessRow[]; lastCommit: string | undefined }> {
  const changes = await pool.query<{ lsn: string; id: string | null; key: string | null }>(
    `SELECT lsn::text AS lsn,
            substring(data from $2) AS id,
            substring(data from $3) AS key
       FROM ${read === 'get' ? 'pg_logical_slot_get_changes' : 'pg_logical_slot_peek_changes'}($1, NULL, NULL)
      WHERE data LIKE 'COMMIT%' OR data LIKE 'table public.outbox: INSERT:%'`,
    [slot, `id\\[uuid\\]:'([0-9a-f-]{36})'`, `aggregateid\\[text\\]:'([^']*)'`],
  );
  const rows: WitnessRow[] = [];
  let lastCommit: string | undefined;
  let open: Array<{ id: string; key: string }> = [];
  for (const change of changes.rows) {
    if (change.id === null) {
      const commitLsn = parseLsn(change.lsn);
      for (const row of open) rows.push({ ...row, commitLsn });
      open = [];
      lastCommit = change.lsn;
    } else {
      open.push({ id: change.id, key: change.key ?? '' });
    }
  }
  return { rows, lastCommit };
}

/**
 * A test_decoding witness that survives a failover: a failover slot read a
 * little at a time, first on the primary, then on the promoted standby.
 *
 * A failover slot is synced to the standby only once it has advanced past the
 * standby's xmin horizon, so a witness read once at the end (as committedRows
 * does) would never be synced and would die with the primary. This one keeps
 * what it reads and then advances the slot to the last commit it holds: peek,
 * keep, advance, never get_changes, so the slot (and its synced copy) is never
 * past what this process holds, whenever the primary dies. The synced copy
 * may lag: what is read again after the failover is recognised by id.
 */
export class WitnessTail {
  readonly rows: WitnessRow[] = [];
  private readonly ids = new Set<string>();

  constructor(readonly slot: string) {}

  /** Reads what the slot holds on `pool`'s server and advances it; resolves with the number of new rows. */
  async drain(pool: pg.Pool): Promise<number> {
    const { rows, lastCommit } = await readWitness(pool, this.slot, 'peek');
    let added = 0;
    for (const row of rows) {
      if (this.ids.has(row.id)) continue;
      this.ids.add(row.id);
      this.rows.push(row);
      added++;
    }
    if (lastCommit !== undefined)
      await pool.query('SELECT pg_replication_slot_advance($1, $2::pg_lsn)', [this.slot, lastCommit]);
    return added;
  }
}
