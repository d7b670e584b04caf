import pg from 'pg';
import { BufferRow, type RowValues } from '../row-values.ts';
import { connectPgClient } from '../pg-client.ts';
import type { Relation } from '../pgoutput.ts';
import { SERVER_WAL_LSN_SQL } from '../server-wal-lsn.ts';
import { countQuery, pageQuery, type ReplayColumns, type ReplaySelection } from './replay-selection.ts';

/** Every value as the text its type's output function prints: what pgoutput sends. */
const rawText = { getTypeParser: () => (value: string) => value };

export interface OutboxPage {
  rows: RowValues[];
  /** The last row's order columns: where the next page starts. */
  cursor: string[];
}

/**
 * Reads selected outbox rows in key order, a bounded page at a time, inside one
 * REPEATABLE READ transaction: every page sees the same snapshot, so rows that
 * commit meanwhile neither shift the pages nor slip in half-way. The
 * transaction is read-only and holds no locks; it does hold back vacuum's
 * horizon while it lasts, as any long read does.
 */
export class OutboxPages {
  private relation: Relation | undefined;

  private constructor(
    private readonly client: pg.Client,
    private readonly table: string,
    private readonly selection: ReplaySelection,
    private readonly columns: ReplayColumns,
    readonly order: readonly string[],
  ) {}

  /**
   * Opens the snapshot: a new one, or `snapshotName` (exported by
   * CREATE_REPLICATION_SLOT), which must be imported before anything else runs.
   */
  static async open(opts: {
    databaseUrl: string;
    table: { schema: string; table: string };
    selection: ReplaySelection;
    columns: ReplayColumns;
    order: readonly string[];
    snapshotName?: string;
  }): Promise<OutboxPages> {
    const client = await connectPgClient({ connectionString: opts.databaseUrl, types: rawText });
    try {
      await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      if (opts.snapshotName) await client.query(`SET TRANSACTION SNAPSHOT ${pg.escapeLiteral(opts.snapshotName)}`);
      const table = `${pg.escapeIdentifier(opts.table.schema)}.${pg.escapeIdentifier(opts.table.table)}`;
      const pages = new OutboxPages(client, table, opts.selection, opts.columns, opts.order);
      await pages.describe(opts.table);
      return pages;
    } catch (error) {
      await client.end().catch(() => {});
      throw error;
    }
  }

  /** The table's columns, in the order `SELECT *` returns them, as the row mapper takes them. */
  get tableRelation(): Relation {
    if (!this.relation) throw new Error('OutboxPages used before open');
    return this.relation;
  }

  /** The snapshot's WAL position: every row it sees committed before it. */
  async walPosition(): Promise<string> {
    const r = await this.client.query<{ lsn: string }>(`SELECT ${SERVER_WAL_LSN_SQL}::text AS lsn`);
    return r.rows[0]?.lsn ?? '0/0';
  }

  async count(cursor: readonly string[] | null): Promise<number> {
    const q = countQuery(this.table, this.selection, this.columns, this.order, cursor);
    const r = await this.client.query<{ n: string }>(q.text, q.values);
    return Number(r.rows[0]?.n ?? 0);
  }

  /** The page after `cursor`; empty when the selection is exhausted. */
  async next(cursor: readonly string[] | null, pageSize: number): Promise<OutboxPage> {
    const q = pageQuery(this.table, this.selection, this.columns, this.order, cursor, pageSize);
    const result = await this.client.query<string[]>({ text: q.text, values: q.values, rowMode: 'array' });
    const width = this.tableRelation.columns.length;
    const rows: RowValues[] = [];
    let last: string[] = cursor ? [...cursor] : [];
    for (const row of result.rows) {
      rows.push(new BufferRow(row.slice(0, width).map((v) => (v === null ? null : Buffer.from(v, 'utf8')))));
      last = row.slice(width) as string[];
    }
    return { rows, cursor: last };
  }

  async close(): Promise<void> {
    await this.client.query('COMMIT').catch(() => {});
    await this.client.end().catch(() => {});
  }

  private async describe(table: { schema: string; table: string }): Promise<void> {
    const r = await this.client.query(`SELECT * FROM ${this.table} LIMIT 0`);
    this.relation = {
      oid: r.fields[0]?.tableID ?? 0,
      schema: table.schema,
      name: table.table,
      columns: r.fields.map((f) => ({ name: f.name, typeOid: f.dataTypeID })),
    };
  }
}

/** A table's columns, and the key columns of each of its btree indexes, in index order. */
export interface TableShape {
  columns: Set<string>;
  indexes: string[][];
}

export async function tableShape(client: pg.Client, schema: string, table: string): Promise<TableShape> {
  const columns = await client.query<{ column_name: string }>(
    'SELECT column_name FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2',
    [schema, table],
  );
  const indexes = await client.query<{ columns: string[] }>(
    `SELECT array_agg(a.attname::text ORDER BY k.n) AS columns
       FROM pg_index i
       JOIN pg_class c ON c.oid = i.indrelid
       JOIN pg_namespace ns ON ns.oid = c.relnamespace
       JOIN pg_am am ON am.oid = (SELECT relam FROM pg_class WHERE oid = i.indexrelid)
       CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, n)
       JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum
      WHERE ns.nspname = $1 AND c.relname = $2 AND am.amname = 'btree' AND i.indpred IS NULL
      GROUP BY i.indexrelid`,
    [schema, table],
  );
  return { columns: new Set(columns.rows.map((r) => r.column_name)), indexes: indexes.rows.map((r) => r.columns) };
}
