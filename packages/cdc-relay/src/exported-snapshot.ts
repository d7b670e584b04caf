import pg from 'pg';
import { connectPgClient } from './pg-client.ts';

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
 * Creates the pgoutput slot on a replication connection and exports the
 * snapshot of its consistent point: the rows that snapshot sees are exactly
 * those the slot will never stream. This is how Postgres's own logical
 * replication copies a table before streaming it (and Debezium's snapshot).
 */
export async function createSlotWithSnapshot(databaseUrl: string, slot: string): Promise<SlotWithSnapshot> {
  // A walsender connection (the typings lack the option pg passes on as a startup parameter).
  const client = await connectPgClient({ connectionString: databaseUrl, replication: 'database' } as pg.ClientConfig);
  try {
    const version = await client.query<{ server_version_num: string }>('SHOW server_version_num');
    // The option list came with Postgres 15; 14 knows only the keyword form (a syntax error otherwise).
    const exportSnapshot =
      Number(version.rows[0]?.server_version_num) >= 150_000 ? "(SNAPSHOT 'export')" : 'EXPORT_SNAPSHOT';
    const created = await client.query<{ consistent_point: string; snapshot_name: string }>(
      `CREATE_REPLICATION_SLOT ${pg.escapeIdentifier(slot)} LOGICAL pgoutput ${exportSnapshot}`,
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
