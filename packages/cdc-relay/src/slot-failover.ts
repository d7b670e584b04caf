/**
 * Failover slots (Postgres 17+): a logical slot created with failover is
 * copied to standbys that run `sync_replication_slots`, so after a promotion
 * the relay resumes from the promoted server's copy instead of stopping with
 * SLOT_MISSING. https://www.postgresql.org/docs/17/logicaldecoding-explanation.html#LOGICALDECODING-REPLICATION-SLOTS-SYNCHRONIZATION
 *
 * The relay asks for it when it creates the slot. An existing slot is changed
 * (ALTER_REPLICATION_SLOT) only while no walsender holds it: Postgres refuses
 * to alter a slot in use, and a snapshot's exported snapshot lives on the very
 * connection that created the slot, so that path never alters afterwards.
 */
import pg from 'pg';
import { connectPgClient } from './pg-client.ts';

/** server_version_num from which slots can be synchronized to standbys. */
export const FAILOVER_SLOTS_VERSION_NUM = 170_000;

/** Whether the relay should ask for a failover slot on this server. */
export function failoverWanted(setting: boolean, serverVersionNum: number): boolean {
  return setting && serverVersionNum >= FAILOVER_SLOTS_VERSION_NUM;
}

/** What the relay says once when the setting is on but the server predates failover slots. */
export function noFailoverSlotsNote(serverVersionNum: number): string {
  return `Postgres ${Math.floor(serverVersionNum / 10_000)} cannot synchronize replication slots to standbys (17+ can): a failover to a standby loses the slot, and the relay then stops with SLOT_MISSING (docs/relay.md, Keeping the slot through a primary failover)`;
}

/** How to change an existing slot's failover by hand, when the relay could not. */
export function recreateForFailoverHint(slot: string, failover: boolean): string {
  return `stop every relay of slot ${slot}, then run ALTER_REPLICATION_SLOT ${slot} (FAILOVER ${failover}) on a replication connection (psql "dbname=… replication=database"), or RELAY_SLOT_FAILOVER=${!failover} to keep the slot as it is`;
}

/**
 * Sets an existing slot's failover on a replication connection. Fails with
 * 55006 (object in use) while a walsender streams from the slot.
 */
export async function alterSlotFailover(databaseUrl: string, slot: string, failover: boolean): Promise<void> {
  // A walsender connection (the typings lack the option pg passes on as a startup parameter).
  const client = await connectPgClient({ connectionString: databaseUrl, replication: 'database' } as pg.ClientConfig);
  try {
    await client.query(`ALTER_REPLICATION_SLOT ${pg.escapeIdentifier(slot)} (FAILOVER ${failover})`);
  } finally {
    await client.end().catch(() => {});
  }
}
