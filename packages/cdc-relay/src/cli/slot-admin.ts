import pg from 'pg';
import type { OutboxMapping } from '../outbox-mapping.ts';
import { querySlotFigures } from '../slot-figures.ts';
import { type CreatedSlot, createPgoutputSlot, createPublication } from '../slot-lifecycle.ts';

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
