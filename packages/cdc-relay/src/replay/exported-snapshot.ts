import pg from 'pg';
import { connectPgClient } from '../pg-client.ts';

export interface SlotWithSnapshot {
  /** Where streaming starts: transactions committing before it are in the snapshot, none after. */
  consistentPoint: string;
  snapshotName: string;
  /**
   * Ends the replication connection. The exported snapshot lives only until
   * then, so call it once a reader has imported it (SET TRANSACTION SNAPSHOT).
   */
  release(): Promise<void>;
}

/**
 * The replication command. Postgres 14 knows only the old syntax (EXPORT_SNAPSHOT; the
 * option list is new in 15) and rejects the new one with "syntax error". FAILOVER (17+)
 * only when asked, and never by a later ALTER_REPLICATION_SLOT: this connection must
 * stay open to keep the exported snapshot alive, and Postgres refuses to alter a slot
 * its walsender holds.
 */
export function createSlotCommand(slot: string, opts: { failover: boolean; serverVersionNum: number }): string {
  const name = pg.escapeIdentifier(slot);
  if (opts.serverVersionNum < 150_000) return `CREATE_REPLICATION_SLOT ${name} LOGICAL pgoutput EXPORT_SNAPSHOT`;
  return `CREATE_REPLICATION_SLOT ${name} LOGICAL pgoutput (${opts.failover ? 'FAILOVER true, ' : ''}SNAPSHOT 'export')`;
}

/**
 * Creates the pgoutput slot (a failover slot when `opts.failover`: the caller
 * checked the server is 17+) on a replication connection and exports the
 * snapshot of its consistent point: the rows that snapshot sees are exactly
 * those the slot will never stream. This is how Postgres's own logical
 * replication copies a table before streaming it (and Debezium's snapshot).
 */
export async function createSlotWithSnapshot(
  databaseUrl: string,
  slot: string,
  opts: { failover: boolean; serverVersionNum: number },
): Promise<SlotWithSnapshot> {
  // A walsender connection (the typings lack the option pg passes on as a startup parameter).
  const client = await connectPgClient({ connectionString: databaseUrl, replication: 'database' } as pg.ClientConfig);
  try {
    const created = await client.query<{ consistent_point: string; snapshot_name: string }>(
      createSlotCommand(slot, opts),
    );
    const row = created.rows[0];
    if (!row?.snapshot_name) throw new Error(`CREATE_REPLICATION_SLOT returned no snapshot for ${slot}`);
    return {
      consistentPoint: row.consistent_point,
      snapshotName: row.snapshot_name,
      release: () => client.end().catch(() => {}),
    };
  } catch (error) {
    await client.end().catch(() => {});
    throw error;
  }
}
