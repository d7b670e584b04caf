import { type Lsn, parseLsn } from '@walnut/schema';
import pg from 'pg';
import { RelayError } from './errors.ts';
import type { OutboxMapping } from './outbox-mapping.ts';
import { failoverWanted } from './slot-failover.ts';
import { querySlotFigures } from './slot-figures.ts';

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
  /** Synchronized to standbys, so it survives a failover (Postgres 17+; null before). */
  failover: boolean | null;
  /** On a standby: a synced copy of the primary's slot (Postgres 17+; null before). */
  synced: boolean | null;
  inactiveSince: string | null;
  /** wal_removed, rows_removed, wal_level_insufficient, idle_timeout (18) (Postgres 17+; null before). */
  invalidationReason: string | null;
}

/** What `walnut-relay slot status` prints: the same figures as walnut.replication_status. */
export async function slotStatus(client: pg.Client, slot: string): Promise<SlotStatus> {
  const figures = await querySlotFigures(client, slot);
  return {
    slot,
    exists: figures !== undefined,
    active: figures?.active ?? false,
    activePid: figures?.activePid ?? null,
    confirmedFlushLsn: figures?.confirmedLsn ?? null,
    lagBytes: figures?.lagBytes ?? null,
    lagPretty: figures?.lagPretty ?? null,
    retainedWalBytes: figures?.retainedWalBytes ?? null,
    retainedWalPretty: figures?.retainedWalPretty ?? null,
    walStatus: figures?.walStatus ?? null,
    failover: figures?.failover ?? null,
    synced: figures?.synced ?? null,
    inactiveSince: figures?.inactiveSince ?? null,
    invalidationReason: figures?.invalidationReason ?? null,
  };
}

/** Creates the pgoutput slot; returns undefined when it already existed. */
export async function createSlot(
  client: pg.Client,
  slot: string,
  opts: { failover: boolean },
): Promise<CreatedSlot | undefined> {
  const exists = await client.query('SELECT 1 FROM pg_replication_slots WHERE slot_name = $1', [slot]);
  if (exists.rowCount) return undefined;
  return createPgoutputSlot(client, slot, opts);
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
  await createPublication(client, publication, outbox);
  return 'created';
}

/** A publication of the outbox table, inserts only: updates and deletes (retention) are not events. */
export async function createPublication(
  client: pg.Client,
  publication: string,
  outbox: Pick<OutboxMapping, 'schema' | 'table'>,
): Promise<void> {
  const table = `${pg.escapeIdentifier(outbox.schema)}.${pg.escapeIdentifier(outbox.table)}`;
  const sql = `CREATE PUBLICATION ${pg.escapeIdentifier(publication)} FOR TABLE ${table} WITH (publish = 'insert')`;
  try {
    await client.query(sql);
  } catch (error) {
    // A least-privilege role (REPLICATION, SELECT) may not: only the table's owner can publish it.
    if ((error as { code?: unknown }).code !== '42501') throw error;
    throw new RelayError(
      'CONFIG_INVALID',
      `publication ${publication} does not exist and the relay's role may not create it (${(error as Error).message}): as the owner of ${table}, run ${sql}; (docs/relay.md, Least privilege)`,
      { retryable: false, cause: error },
    );
  }
}

export interface CreatedSlot {
  /** Where the slot starts (its consistent point). */
  startLsn: Lsn;
  /** Whether it was created as a failover slot: false on Postgres 14-16 whatever was asked. */
  failover: boolean;
  serverVersionNum: number;
}

/**
 * Creates the pgoutput slot, as a failover slot when asked and the server has
 * them (17+): at creation, since an ALTER later is refused while a relay streams.
 */
export async function createPgoutputSlot(
  client: pg.Client,
  slot: string,
  opts: { failover: boolean },
): Promise<CreatedSlot> {
  const version = await client.query<{ v: string }>(`SELECT current_setting('server_version_num') AS v`);
  const serverVersionNum = Number(version.rows[0]?.v);
  const failover = failoverWanted(opts.failover, serverVersionNum);
  // Arguments: slot_name, plugin, temporary, twophase, failover (the fifth is new in 17).
  const created = await client.query<{ lsn: string }>(
    failover
      ? `SELECT lsn::text AS lsn FROM pg_create_logical_replication_slot($1, 'pgoutput', false, false, true)`
      : `SELECT lsn::text AS lsn FROM pg_create_logical_replication_slot($1, 'pgoutput')`,
    [slot],
  );
  return { startLsn: parseLsn(created.rows[0]?.lsn ?? '0/0'), failover, serverVersionNum };
}
