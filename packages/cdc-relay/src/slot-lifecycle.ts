/**
 * Creating and dropping the relay's publication and slot: what the relay does
 * itself (at start, and a snapshot with its own slot). The operator's commands
 * (`walnut-relay slot ...`, `publication sync`) build on these in slot-admin.ts.
 */
import { type Lsn, parseLsn } from '@walnut/schema';
import pg from 'pg';
import { RelayError } from './errors.ts';
import type { OutboxMapping } from './outbox-mapping.ts';
import { failoverWanted } from './slot-failover.ts';

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
  /** Whether it was created as a failover slot: false on Postgres 14-16 and on a standby, whatever was asked. */
  failover: boolean;
  serverVersionNum: number;
}

/**
 * Creates the pgoutput slot, as a failover slot when asked and the server has
 * them (17+) and is a primary: at creation, since an ALTER later is refused while a relay streams.
 */
export async function createPgoutputSlot(
  client: pg.Client,
  slot: string,
  opts: { failover: boolean },
): Promise<CreatedSlot> {
  const version = await client.query<{ v: string; in_recovery: boolean }>(
    `SELECT current_setting('server_version_num') AS v, pg_is_in_recovery() AS in_recovery`,
  );
  const serverVersionNum = Number(version.rows[0]?.v);
  // Only a primary's slots can be synced to standbys: Postgres refuses failover for a slot made on a standby.
  const failover = failoverWanted(opts.failover, serverVersionNum) && version.rows[0]?.in_recovery !== true;
  // Arguments: slot_name, plugin, temporary, twophase, failover (the fifth is new in 17).
  const created = await client.query<{ lsn: string }>(
    failover
      ? `SELECT lsn::text AS lsn FROM pg_create_logical_replication_slot($1, 'pgoutput', false, false, true)`
      : `SELECT lsn::text AS lsn FROM pg_create_logical_replication_slot($1, 'pgoutput')`,
    [slot],
  );
  return { startLsn: parseLsn(created.rows[0]?.lsn ?? '0/0'), failover, serverVersionNum };
}

/** Drops the slot (Postgres refuses while a relay streams from it); false when absent. */
export async function dropSlot(client: pg.Client, slot: string): Promise<boolean> {
  const dropped = await client.query(
    'SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1',
    [slot],
  );
  return (dropped.rowCount ?? 0) > 0;
}
