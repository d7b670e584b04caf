/**
 * Whether the publication publishes every insert of the outbox, decided from
 * the catalogs' facts: the pure half of the publication check (the queries are
 * publication-facts.ts, the checks on a timer publication-check.ts). Each drift
 * comes with the message that names its fix and the replay that closes the gap.
 */
import pg from 'pg';
import { RelayError } from './errors.ts';

/** What the catalogs say, read by readPublicationFacts. */
export interface PublicationFacts {
  publicationExists: boolean;
  /** FOR ALL TABLES. */
  allTables: boolean;
  /** publish includes 'insert'. */
  publishesInsert: boolean;
  /** pg_class oid of schema.table now; null when there is no such table. */
  tableOid: number | null;
  /** The table is in pg_publication_tables for the publication (FOR TABLE, FOR TABLES IN SCHEMA or FOR ALL TABLES). */
  tablePublished: boolean;
  /** A WHERE clause on the table in the publication (15+). */
  rowFilter: boolean;
  /** A column list on the table in the publication (15+). */
  columnList: boolean;
}

export interface Expected {
  publication: string;
  schema: string;
  table: string;
  /** The oid of the table this relay streamed before, if it has checked once. */
  tableOid: number | null;
  /** When the relay last found the publication right (for the replay hint); null if never in this process. */
  lastGoodAt: Date | null;
}

export type Drift =
  | 'publication-missing'
  | 'table-missing'
  | 'table-replaced'
  | 'not-published'
  | 'inserts-not-published'
  | 'row-filter'
  | 'column-list';

export type Verdict = { ok: true; tableOid: number } | { ok: false; drift: Drift; message: string };

/**
 * Whether the publication publishes every insert of the configured outbox,
 * the table the relay streamed before. A row filter or a column list on the
 * outbox is drift too: a filtered-out row is never sent, and a row without
 * its mapped columns cannot be relayed faithfully.
 */
export function judgePublication(facts: PublicationFacts, expected: Expected): Verdict {
  const pub = pg.escapeIdentifier(expected.publication);
  const table = `${pg.escapeIdentifier(expected.schema)}.${pg.escapeIdentifier(expected.table)}`;
  const sync = 'walnut-relay publication sync (run as the owner of the table)';
  const replay = replayHint(expected.lastGoodAt);
  const fail = (drift: Drift, what: string, fix: string): Verdict => ({
    ok: false,
    drift,
    message: `${what}. Rows inserted meanwhile are never sent by the slot, and the relay confirms nothing past its last good check. Fix: ${fix}; then ${replay}`,
  });
  if (facts.tableOid === null) {
    return fail(
      'table-missing',
      `the outbox table ${table} is gone (dropped or renamed)`,
      `create it again and add it to the publication (ALTER PUBLICATION ${pub} ADD TABLE ${table}, or ${sync}), then restart the relay to accept the new table`,
    );
  }
  if (expected.tableOid !== null && facts.tableOid !== expected.tableOid) {
    return fail(
      'table-replaced',
      `the outbox table ${table} was dropped and created again (oid ${expected.tableOid}, now ${facts.tableOid}): rows written to the new table before it joined the publication were not published`,
      `make sure the publication publishes it (${sync}), then restart the relay to accept the new table`,
    );
  }
  if (!facts.publicationExists) {
    return fail(
      'publication-missing',
      `publication ${pub} no longer exists`,
      `CREATE PUBLICATION ${pub} FOR TABLE ${table} WITH (publish = 'insert'), or ${sync}`,
    );
  }
  if (!facts.tablePublished) {
    return fail(
      'not-published',
      `publication ${pub} does not publish the outbox table ${table}`,
      `ALTER PUBLICATION ${pub} ADD TABLE ${table}, or ${sync}`,
    );
  }
  if (!facts.publishesInsert) {
    return fail(
      'inserts-not-published',
      `publication ${pub} does not publish inserts`,
      `ALTER PUBLICATION ${pub} SET (publish = 'insert'), or ${sync}`,
    );
  }
  if (facts.rowFilter) {
    return fail(
      'row-filter',
      `publication ${pub} has a row filter (WHERE) on ${table}: rows it filters out are never sent`,
      `ALTER PUBLICATION ${pub} SET TABLE ${table}, or ${sync}`,
    );
  }
  if (facts.columnList) {
    return fail(
      'column-list',
      `publication ${pub} publishes only some columns of ${table}`,
      `ALTER PUBLICATION ${pub} SET TABLE ${table}, or ${sync}`,
    );
  }
  return { ok: true, tableOid: facts.tableOid };
}

function replayHint(lastGoodAt: Date | null): string {
  const since = lastGoodAt
    ? `${lastGoodAt.toISOString()} (the relay's last good check)`
    : '<a time before the publication changed>';
  return `re-publish the rows of the gap from the outbox table with walnut-relay replay --since ${since} (duplicates are harmless, a gap is not)`;
}

export function driftError(message: string): RelayError {
  // Retryable: the relay stays up in backoff (/ready 503, the code on the status page and in
  // walnut_relay_state) and resumes by itself once the publication is right again.
  return new RelayError('PUBLICATION_DRIFT', message, { retryable: true });
}

/** Facts of a publication that publishes the table as it should. */
export const PUBLISHED: Omit<PublicationFacts, 'tableOid'> = {
  publicationExists: true,
  allTables: false,
  publishesInsert: true,
  tablePublished: true,
  rowFilter: false,
  columnList: false,
};
