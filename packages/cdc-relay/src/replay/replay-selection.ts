import pg from 'pg';

/**
 * Which outbox rows a replay re-publishes. Every given bound applies (AND);
 * an empty selection is refused by the CLI unless `--all` says so.
 */
export interface ReplaySelection {
  /** Inclusive bounds on the id column. */
  fromId?: string | undefined;
  toId?: string | undefined;
  /** `since <= created_at < until`, as Postgres timestamptz text. */
  since?: string | undefined;
  until?: string | undefined;
  aggregateType?: string | undefined;
  aggregateId?: string | undefined;
}

/** The outbox columns a replay reads by name (the live mapping's, plus creation time and aggregate type). */
export interface ReplayColumns {
  id: string;
  key: string;
  /** Absent when the table has no such column: time selections are then refused, pages go in id order. */
  createdAt: string | undefined;
  /** An index leads with (createdAt, id): only then do pages go in creation order (see pageOrder). */
  createdAtIndexed: boolean;
  aggregateType: string | undefined;
}

/**
 * Pages go in key order so that a cursor (the last row's key) resumes exactly
 * after what was acked: by creation time then id when an index leads with
 * those two (the app's own order of a key's events; Walnut's outbox has it),
 * else by id, the primary key. Not by creation time over an index on it alone:
 * the rows of one large transaction share one now(), and every page would
 * re-read and sort that whole group. An id range always goes by id, which
 * bounds the scan.
 */
export function pageOrder(selection: ReplaySelection, columns: ReplayColumns): string[] {
  const idRange = selection.fromId !== undefined || selection.toId !== undefined;
  return columns.createdAt && columns.createdAtIndexed && !idRange ? [columns.createdAt, columns.id] : [columns.id];
}

export interface PageQuery {
  text: string;
  values: string[];
}

/**
 * The query of the page after `cursor` (null: the first page): the selection,
 * then a keyset condition on the order columns, LIMIT `pageSize`. Every column
 * comes back as the text Postgres prints, like pgoutput sends it, and the
 * order columns once more at the end as the next cursor.
 */
export function pageQuery(
  table: string,
  selection: ReplaySelection,
  columns: ReplayColumns,
  order: readonly string[],
  cursor: readonly string[] | null,
  pageSize: number,
): PageQuery {
  const { where, values } = pageWhere(selection, columns, order, cursor);
  const ordered = order.map((c) => pg.escapeIdentifier(c));
  const cursorColumns = ordered.map((c, i) => `${c}::text AS ${pg.escapeIdentifier(`${CURSOR_PREFIX}${i}`)}`);
  return {
    text: `SELECT *, ${cursorColumns.join(', ')} FROM ${table}${where} ORDER BY ${ordered.join(', ')} LIMIT ${Math.trunc(pageSize)}`,
    values,
  };
}

/** Names of the extra columns pageQuery appends (the cursor); not part of the outbox row. */
const CURSOR_PREFIX = 'walnut_cursor_';

/** How many rows the selection holds past `cursor`: the total a progress report counts towards. */
export function countQuery(
  table: string,
  selection: ReplaySelection,
  columns: ReplayColumns,
  order: readonly string[],
  cursor: readonly string[] | null,
): PageQuery {
  const { where, values } = pageWhere(selection, columns, order, cursor);
  return { text: `SELECT count(*)::text AS n FROM ${table}${where}`, values };
}

function pageWhere(
  selection: ReplaySelection,
  columns: ReplayColumns,
  order: readonly string[],
  cursor: readonly string[] | null,
): { where: string; values: string[] } {
  const { where, values } = selectionWhere(selection, columns);
  if (cursor) {
    if (cursor.length !== order.length)
      throw new Error(`cursor has ${cursor.length} values for ${order.length} columns`);
    const ordered = order.map((c) => pg.escapeIdentifier(c));
    const params = cursor.map((value) => {
      values.push(value);
      return `$${values.length}`;
    });
    // The leading column alone lets the planner use its index; the row comparison is exact.
    where.push(`${ordered[0]} >= ${params[0]}`);
    where.push(`(${ordered.join(', ')}) > (${params.join(', ')})`);
  }
  return { where: where.length ? ` WHERE ${where.join(' AND ')}` : '', values };
}

function selectionWhere(selection: ReplaySelection, columns: ReplayColumns): { where: string[]; values: string[] } {
  const where: string[] = [];
  const values: string[] = [];
  const bound = (column: string, op: string, value: string | undefined) => {
    if (value === undefined) return;
    values.push(value);
    where.push(`${pg.escapeIdentifier(column)} ${op} $${values.length}`);
  };
  bound(columns.id, '>=', selection.fromId);
  bound(columns.id, '<=', selection.toId);
  if (selection.since !== undefined || selection.until !== undefined) {
    if (!columns.createdAt) throw new Error('a time range needs the creation time column (RELAY_COLUMN_CREATED_AT)');
    bound(columns.createdAt, '>=', selection.since);
    bound(columns.createdAt, '<', selection.until);
  }
  if (selection.aggregateType !== undefined) {
    if (!columns.aggregateType) {
      throw new Error('an aggregate type selection needs the column (RELAY_COLUMN_AGGREGATE_TYPE)');
    }
    bound(columns.aggregateType, '=', selection.aggregateType);
  }
  bound(columns.key, '=', selection.aggregateId);
  return { where, values };
}

export function isEmptySelection(selection: ReplaySelection): boolean {
  return Object.values(selection).every((v) => v === undefined);
}
