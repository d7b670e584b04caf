import { parseLsn } from '@walnut/schema';
import type { WalnutFixture } from '@walnut/stack';

/** The WAL insert position now: rows committed after this call commit past it. */
export async function walLsn(walnut: WalnutFixture): Promise<bigint> {
  const r = await walnut.pool.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn');
  return parseLsn(r.rows[0]?.lsn ?? '0/0');
}

/** How far the fixture's slot is confirmed (0/0 while it has none). */
export async function confirmedLsn(walnut: WalnutFixture): Promise<bigint> {
  const r = await walnut.pool.query<{ lsn: string }>(
    'SELECT confirmed_flush_lsn::text AS lsn FROM pg_replication_slots WHERE slot_name = $1',
    [walnut.slot],
  );
  return parseLsn(r.rows[0]?.lsn ?? '0/0');
}
