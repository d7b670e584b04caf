import pg from 'pg';
import type { OutboxMapping } from './outbox-mapping.ts';

export interface SlotStatus {
  slot: string;
  exists: boolean;
  active: boolean;
  activePid: number | null;
  confirmedFlushLsn: string | null;
  lagBytes: number | null;
  lagPretty: string | null;
  retainedWalBytes: number | null;
  retainedWalPretty: string | null;
  walStatus: string | null;
}

/** What `walnut-relay slot status` prints: the same figures as walnut.replication_status. */
export async function slotStatus(client: pg.Client, slot: string): Promise<SlotStatus> {
  const result = await client.query(
    `SELECT active, active_pid, confirmed_flush_lsn::text AS confirmed_flush_lsn,
            pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::bigint AS lag_bytes,
            pg_size_pretty(pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)) AS lag_pretty,
            pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint AS retained_wal_bytes,
            pg_size_pretty(pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)) AS retained_wal_pretty,
            wal_status
       FROM pg_replication_slots WHERE slot_name = $1`,
    [slot],
  );
  const row = result.rows[0];
  if (!row) {
    return {
      slot,
      exists: false,
      active: false,
      activePid: null,
      confirmedFlushLsn: null,
      lagBytes: null,
      lagPretty: null,
      retainedWalBytes: null,
      retainedWalPretty: null,
      walStatus: null,
    };
  }
  return {
    slot,
    exists: true,
    active: row.active,
    activePid: row.active_pid,
    confirmedFlushLsn: row.confirmed_flush_lsn,
    lagBytes: row.lag_bytes === null ? null : Number(row.lag_bytes),
    lagPretty: row.lag_pretty,
    retainedWalBytes: row.retained_wal_bytes === null ? null : Number(row.retained_wal_bytes),
    retainedWalPretty: row.retained_wal_pretty,
    walStatus: row.wal_status,
  };
}

/** Creates the pgoutput slot; returns false when it already existed. */
export async function createSlot(client: pg.Client, slot: string): Promise<boolean> {
  const exists = await client.query('SELECT 1 FROM pg_replication_slots WHERE slot_name = $1', [slot]);
  if (exists.rowCount) return false;
  await client.query(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, [slot]);
  return true;
}

/** Drops the slot (Postgres refuses while a relay streams from it); false when absent. */
export async function dropSlot(client: pg.Client, slot: string): Promise<boolean> {
  const dropped = await client.query(
    'SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1',
    [slot],
  );
  return (dropped.rowCount ?? 0) > 0;
}

/**
 * Makes the publication publish exactly the outbox table, inserts only. Run by
 * the table's owner: the relay's own role needs no ownership when it exists.
 */
export async function syncPublication(
  client: pg.Client,
  publication: string,
  outbox: Pick<OutboxMapping, 'schema' | 'table'>,
): Promise<'created' | 'updated'> {
  const name = pg.escapeIdentifier(publication);
  const table = `${pg.escapeIdentifier(outbox.schema)}.${pg.escapeIdentifier(outbox.table)}`;
  const exists = await client.query('SELECT 1 FROM pg_publication WHERE pubname = $1', [publication]);
  if (exists.rowCount) {
    await client.query(`ALTER PUBLICATION ${name} SET TABLE ${table}`);
    await client.query(`ALTER PUBLICATION ${name} SET (publish = 'insert')`);
    return 'updated';
  }
  await client.query(`CREATE PUBLICATION ${name} FOR TABLE ${table} WITH (publish = 'insert')`);
  return 'created';
}
