import { type Lsn, parseLsn } from '@walnut/schema';
import pg from 'pg';
import { RelayError } from './errors.ts';
import type { OutboxMapping } from './outbox-mapping.ts';

export interface SlotState {
  confirmedFlushLsn: Lsn;
  created: boolean;
}

/**
 * Checks the server can serve logical replication, then makes sure the
 * publication (outbox inserts only) and the pgoutput slot exist. Returns where
 * the slot will resume: the LSN last confirmed, i.e. acked by Kafka.
 */
export async function prepareSlot(
  client: pg.Client,
  opts: { slot: string; publication: string; outbox: OutboxMapping },
): Promise<SlotState> {
  const walLevel = await client.query<{ wal_level: string }>('SHOW wal_level');
  if (walLevel.rows[0]?.wal_level !== 'logical') {
    throw new RelayError(
      'WAL_LEVEL_NOT_LOGICAL',
      `Postgres has wal_level=${walLevel.rows[0]?.wal_level}; set wal_level=logical in postgresql.conf and restart Postgres`,
      { retryable: false },
    );
  }

  const table = `${pg.escapeIdentifier(opts.outbox.schema)}.${pg.escapeIdentifier(opts.outbox.table)}`;
  const exists = await client.query<{ oid: string | null }>('SELECT to_regclass($1)::text AS oid', [table]);
  if (!exists.rows[0]?.oid) {
    throw new RelayError('OUTBOX_TABLE_MISSING', `outbox table ${table} does not exist (yet)`, {
      retryable: true,
    });
  }

  const publication = await client.query('SELECT 1 FROM pg_publication WHERE pubname = $1', [opts.publication]);
  if (publication.rowCount === 0) {
    await client.query(
      `CREATE PUBLICATION ${pg.escapeIdentifier(opts.publication)} FOR TABLE ${table} WITH (publish = 'insert')`,
    );
  }

  const slot = await readSlot(client, opts.slot);
  if (!slot) {
    const created = await client.query<{ lsn: string }>(
      `SELECT lsn::text AS lsn FROM pg_create_logical_replication_slot($1, 'pgoutput')`,
      [opts.slot],
    );
    return { confirmedFlushLsn: parseLsn(created.rows[0]?.lsn ?? '0/0'), created: true };
  }
  if (slot.plugin !== 'pgoutput' || slot.database !== slot.current_database) {
    throw new RelayError(
      'CONFIG_INVALID',
      `slot ${opts.slot} exists with plugin ${slot.plugin} on database ${slot.database}; choose another RELAY_SLOT`,
      { retryable: false },
    );
  }
  if (slot.wal_status === 'lost') {
    throw new RelayError(
      'SLOT_INVALIDATED',
      `slot ${opts.slot} was invalidated (WAL past max_slot_wal_keep_size was removed); events in the gap are lost. Drop and recreate the slot, then reconcile`,
      { retryable: false },
    );
  }
  if (slot.active_pid !== null) {
    // The client's address is what finds the other process; it is null when this role may not see it.
    const client = slot.client ? ` (client ${slot.client})` : '';
    throw new RelayError('SLOT_IN_USE', `slot ${opts.slot} is held by backend pid ${slot.active_pid}${client}`, {
      retryable: true,
    });
  }
  return { confirmedFlushLsn: parseLsn(slot.confirmed_flush_lsn ?? '0/0'), created: false };
}

interface SlotRow {
  plugin: string;
  database: string;
  current_database: string;
  active_pid: number | null;
  client: string | null;
  confirmed_flush_lsn: string | null;
  wal_status: string | null;
}

async function readSlot(client: pg.Client, slot: string): Promise<SlotRow | undefined> {
  const result = await client.query<SlotRow>(
    `SELECT s.plugin, s.database, current_database() AS current_database, s.active_pid,
            host(a.client_addr) || ':' || a.client_port AS client,
            s.confirmed_flush_lsn::text AS confirmed_flush_lsn, s.wal_status
       FROM pg_replication_slots s LEFT JOIN pg_stat_activity a ON a.pid = s.active_pid
      WHERE s.slot_name = $1`,
    [slot],
  );
  return result.rows[0];
}
