/**
 * The publication check's queries: what the catalogs say about the publication
 * and the outbox, and the WAL position they are true at. Only catalogs any role
 * may read are used: a least-privilege relay need not own the table or the
 * publication.
 */
import { type Lsn, parseLsn } from '@walnut/schema';
import type pg from 'pg';
import type { PublicationFacts } from './publication-verdict.ts';
import { SERVER_WAL_LSN_SQL } from './server-wal-lsn.ts';

/** A check's facts and the WAL position read just before them. */
export interface CheckedFacts {
  facts: PublicationFacts;
  /** Every catalog change committed before this position is in `facts`. */
  walLsn: Lsn;
}

/**
 * Reads the facts. The WAL position is read first, in its own statement, so the
 * catalog snapshot of the second one sees every change committed before it.
 */
export async function readPublicationFacts(
  client: pg.Client,
  target: { publication: string; schema: string; table: string },
): Promise<CheckedFacts> {
  const lsn = await client.query<{ lsn: string; version: string }>(
    `SELECT ${SERVER_WAL_LSN_SQL}::text AS lsn,
            current_setting('server_version_num') AS version`,
  );
  const version = Number(lsn.rows[0]?.version ?? 0);
  // prqual (row filter) and prattrs (column list) exist from 15 on.
  const filters =
    version >= 150000
      ? `(SELECT r.prqual IS NOT NULL FROM pg_publication_rel r WHERE r.prpubid = p.oid AND r.prrelid = t.oid) AS row_filter,
         (SELECT r.prattrs IS NOT NULL FROM pg_publication_rel r WHERE r.prpubid = p.oid AND r.prrelid = t.oid) AS column_list`
      : 'false AS row_filter, false AS column_list';
  const result = await client.query<{
    publication_exists: boolean;
    all_tables: boolean | null;
    publishes_insert: boolean | null;
    table_oid: string | null;
    table_published: boolean;
    row_filter: boolean | null;
    column_list: boolean | null;
  }>(
    `WITH t AS (SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                 WHERE n.nspname = $2 AND c.relname = $3 AND c.relkind IN ('r', 'p')),
          p AS (SELECT oid, puballtables, pubinsert FROM pg_publication WHERE pubname = $1)
     SELECT EXISTS (SELECT 1 FROM p) AS publication_exists,
            (SELECT puballtables FROM p) AS all_tables,
            (SELECT pubinsert FROM p) AS publishes_insert,
            (SELECT oid::text FROM t) AS table_oid,
            EXISTS (SELECT 1 FROM pg_publication_tables pt
                     WHERE pt.pubname = $1 AND pt.schemaname = $2 AND pt.tablename = $3) AS table_published,
            ${filters}
       FROM (SELECT 1) one LEFT JOIN t ON true LEFT JOIN p ON true`,
    [target.publication, target.schema, target.table],
  );
  const row = result.rows[0];
  return {
    walLsn: parseLsn(lsn.rows[0]?.lsn ?? '0/0'),
    facts: {
      publicationExists: row?.publication_exists ?? false,
      allTables: row?.all_tables ?? false,
      publishesInsert: row?.publishes_insert ?? false,
      tableOid: row?.table_oid ? Number(row.table_oid) : null,
      tablePublished: row?.table_published ?? false,
      rowFilter: row?.row_filter ?? false,
      columnList: row?.column_list ?? false,
    },
  };
}
