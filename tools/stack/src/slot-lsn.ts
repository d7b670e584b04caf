import { formatLsn, parseLsn } from '@walnut/schema';
import type pg from 'pg';
import { StackError } from './errors.ts';
import { waitFor } from './wait-for.ts';
import type { WalnutProcess } from './walnut-processes.ts';

/**
 * WAL positions and a slot's confirmed LSN, as bigint (@walnut/schema's
 * parseLsn), so tests compare them exactly and never as text: "0/9" sorts
 * after "0/10".
 */

type Queryable = Pick<pg.Pool, 'query'>;

/** The WAL write position now: rows committed after this call commit past it. */
export async function walLsn(pool: Queryable): Promise<bigint> {
  const r = await pool.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn');
  return parseLsn(r.rows[0]?.lsn ?? '0/0');
}

/** The WAL insert position now: at or past the end of every record inserted so far, flushed or not. */
export async function walInsertLsn(pool: Queryable): Promise<bigint> {
  const r = await pool.query<{ lsn: string }>('SELECT pg_current_wal_insert_lsn()::text AS lsn');
  return parseLsn(r.rows[0]?.lsn ?? '0/0');
}

/** The slot's confirmed_flush_lsn, or undefined when there is no such slot. */
export async function slotLsn(pool: Queryable, slot: string): Promise<bigint | undefined> {
  const r = await pool.query<{ lsn: string | null }>(
    'SELECT confirmed_flush_lsn::text AS lsn FROM pg_replication_slots WHERE slot_name = $1',
    [slot],
  );
  const row = r.rows[0];
  return row ? parseLsn(row.lsn ?? '0/0') : undefined;
}

/** How far the slot is confirmed: 0/0 while it does not exist. */
export async function confirmedLsn(pool: Queryable, slot: string): Promise<bigint> {
  return (await slotLsn(pool, slot)) ?? 0n;
}

/**
 * Waits until the slot's confirmed LSN is at or past `lsn`; returns it. With
 * `relay`, a relay that exits fails the wait at once (it will confirm nothing
 * more), and a timeout shows the relay's last lines.
 */
export async function waitConfirmed(
  pool: Queryable,
  slot: string,
  lsn: bigint,
  opts: { what?: string; timeoutMs?: number; intervalMs?: number; relay?: WalnutProcess } = {},
): Promise<bigint> {
  const { relay } = opts;
  const what = opts.what ?? `slot ${slot} confirmed to ${formatLsn(lsn)}`;
  try {
    return await waitFor(
      what,
      async () => {
        const confirmed = await confirmedLsn(pool, slot);
        if (confirmed >= lsn) return confirmed;
        if (relay && !relay.running) {
          throw new StackError('PROCESS_EXITED', `${relay.name} exited before ${what}:\n${relay.tail(20)}`);
        }
        return undefined;
      },
      opts,
    );
  } catch (error) {
    if (!relay || !(error instanceof StackError) || error.code !== 'TIMEOUT') throw error;
    throw new StackError('TIMEOUT', `${error.message}\nrelay output:\n${relay.tail(20)}`, { cause: error });
  }
}
