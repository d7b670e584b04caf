/**
 * The publication cannot drift silently (issue 23, item 6). pgoutput decodes
 * each WAL record with the publication as it was when that record was written
 * (the slot's historic catalog snapshot): rows written while the publication
 * did not publish the outbox's inserts are never sent, and no later fix can
 * make the slot send them. All the relay can do is notice, stop, and never
 * confirm a position past the point where it last saw the publication right,
 * so the rows of the gap are named (they are still in the outbox table) and
 * re-published with `walnut-relay replay --since`.
 *
 * So a session confirms no LSN past its *ceiling*: the WAL position read just
 * before the last check that found the publication right. Checks run at the
 * session's start, every RELAY_PUBLICATION_CHECK_MS, and, when the ack tracker
 * would confirm past the ceiling, at once (at most every 200 ms), so a busy
 * relay's confirmations lag by a fraction of a second, not a check interval:
 * in restart.test.ts's SIGKILL, 12 duplicates of 4,000 events (2 with no
 * ceiling, 450 with checks at most once a second).
 *
 * The decision is pure (judgePublication); the queries and the timer are the
 * edge (PublicationGuard). Only catalogs any role may read are used: a
 * least-privilege relay need not own the table or the publication.
 */
import { type Lsn, parseLsn } from '@walnut/schema';
import pg from 'pg';
import { RelayError, toRelayError } from './errors.ts';
import { connectPgClient } from './pg-client.ts';
import type { Relation } from './pgoutput.ts';

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
    `SELECT (CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END)::text AS lsn,
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

export interface GuardOptions {
  databaseUrl: string;
  publication: string;
  schema: string;
  table: string;
  checkIntervalMs: number;
}

/** Facts of a publication that publishes the table as it should. */
const PUBLISHED: Omit<PublicationFacts, 'tableOid'> = {
  publicationExists: true,
  allTables: false,
  publishesInsert: true,
  tablePublished: true,
  rowFilter: false,
  columnList: false,
};

/** Least time between two checks made because the tracker would confirm past the ceiling. */
const ON_DEMAND_GAP_MS = 200;

/**
 * One relay's memory of its publication, across sessions: the outbox's oid and
 * when the publication was last found right. Each session starts it (the check
 * at the session's start) and closes it; while it runs it checks on a timer and
 * on demand, and calls onDrift once on the first failed check. The memory is
 * the process's: a restarted relay accepts the table it finds (see docs/relay.md,
 * The publication).
 */
export class PublicationGuard {
  private tableOid: number | null = null;
  private lastGoodAt: Date | null = null;
  private ceilingLsn: Lsn = 0n;
  private client: pg.Client | null = null;
  /** Between open() and close(): checks may (re)connect. */
  private opened = false;
  private timer: NodeJS.Timeout | null = null;
  private checking: Promise<void> | null = null;
  private lastCheckAt = 0;
  private onDrift: ((error: RelayError) => void) | null = null;
  private onAdvance: (() => void) | null = null;
  private drifted: RelayError | null = null;
  private pendingCheck: NodeJS.Timeout | null = null;
  /** The server the session streams from (a multi-host URL resolved once per session): checked there. */
  private sessionUrl: string;

  constructor(private readonly options: GuardOptions) {
    this.sessionUrl = options.databaseUrl;
  }

  /** The highest LSN a session may confirm. */
  get ceiling(): Lsn {
    return this.ceilingLsn;
  }

  /**
   * The check at a session's start, on a connection kept for the later ones:
   * throws PUBLICATION_DRIFT when the publication is wrong, else sets the
   * ceiling. Checks on the timer begin with watch().
   */
  async open(databaseUrl: string = this.options.databaseUrl): Promise<void> {
    this.close();
    this.sessionUrl = databaseUrl;
    this.drifted = null;
    this.opened = true;
    const drift = await this.check().catch((error: unknown) => {
      this.close();
      throw error;
    });
    if (drift) {
      this.close();
      throw drift;
    }
  }

  /**
   * While a session streams: checks every checkIntervalMs. onDrift once, with
   * PUBLICATION_DRIFT, or with the error of a check that failed twice (the
   * session then restarts rather than confirm nothing more); onAdvance after
   * each good check.
   */
  watch(onDrift: (error: RelayError) => void, onAdvance: () => void): void {
    this.onDrift = onDrift;
    this.onAdvance = onAdvance;
    if (this.drifted) onDrift(this.drifted);
    this.timer ??= setInterval(() => this.checkSoon(), this.options.checkIntervalMs);
  }

  close(): void {
    this.opened = false;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    if (this.pendingCheck) clearTimeout(this.pendingCheck);
    this.pendingCheck = null;
    this.onDrift = null;
    this.onAdvance = null;
    this.dropConnection();
  }

  /**
   * The LSN a session may report: the tracker's, capped at the ceiling. When
   * the cap holds it back, a check runs soon to move the ceiling on.
   */
  cap(confirmed: Lsn): Lsn {
    if (confirmed <= this.ceilingLsn) return confirmed;
    this.checkWithinGap();
    return this.ceilingLsn;
  }

  /**
   * A check now, or once the gap since the last one has passed. Never dropped:
   * the last acks of a burst often arrive within the gap (or during a check that
   * read the WAL position before their commit), and nothing else would call cap
   * again until the status timer.
   */
  private checkWithinGap(): void {
    const wait = this.lastCheckAt + Math.min(ON_DEMAND_GAP_MS, this.options.checkIntervalMs) - performance.now();
    if (wait <= 0 && !this.checking) {
      this.checkSoon();
      return;
    }
    this.pendingCheck ??= setTimeout(
      () => {
        this.pendingCheck = null;
        if (this.checking) this.checking.finally(() => this.checkWithinGap());
        else this.checkSoon();
      },
      Math.max(wait, 0),
    );
  }

  /**
   * One check now, for a graceful stop's last confirmation: the ceiling catches up
   * with what Kafka acked, so a clean restart replays nothing. A drift or a failed
   * check leaves the ceiling where it is. Bounded by timeoutMs (a server that does
   * not answer must not hold up the stop).
   */
  async settle(timeoutMs: number): Promise<void> {
    if (!this.opened || this.drifted) return;
    let timer: NodeJS.Timeout | undefined;
    const settled = (async () => {
      await this.checking?.catch(() => {});
      const drift = await this.check().catch(() => null);
      if (drift) this.drifted = drift;
    })();
    const timedOut = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, timeoutMs);
    });
    await Promise.race([settled, timedOut]);
    clearTimeout(timer);
  }

  /**
   * A Relation message of the stream, given the oid the last Relation message
   * under the outbox's name carried in this session: another oid means the
   * table was replaced while the relay streamed. Throws PUBLICATION_DRIFT;
   * returns the oid to remember.
   */
  relation(relation: Relation, before: number | undefined): number | undefined {
    if (relation.schema !== this.options.schema || relation.name !== this.options.table) return before;
    if (before !== undefined && before !== relation.oid) {
      const verdict = judgePublication(
        { ...PUBLISHED, tableOid: relation.oid },
        { ...this.options, tableOid: before, lastGoodAt: this.lastGoodAt },
      );
      if (!verdict.ok) {
        // Until the process restarts, every check compares the table with the one streamed before.
        this.tableOid = before;
        throw driftError(verdict.message);
      }
    }
    return relation.oid;
  }

  private checkSoon(): void {
    if (this.checking || !this.opened || this.drifted) return;
    this.checking = this.check()
      .then(
        (drift) => {
          if (drift) {
            this.drifted = drift;
            this.onDrift?.(drift);
          } else {
            this.onAdvance?.();
          }
        },
        // Not drift, but a session whose checks fail can confirm nothing more: it ends, and
        // the next one connects afresh (the supervisor backs off meanwhile).
        (error: unknown) => this.onDrift?.(toRelayError(error)),
      )
      .finally(() => {
        this.checking = null;
      });
  }

  /**
   * One check; returns the drift error, or null after moving the ceiling on.
   * The connection is kept between checks; a dropped one (idle_session_timeout,
   * a terminated backend) is replaced once before the check fails.
   */
  private async check(): Promise<RelayError | null> {
    this.lastCheckAt = performance.now();
    let checked: CheckedFacts;
    try {
      checked = await readPublicationFacts(await this.connection(), this.options);
    } catch {
      this.dropConnection();
      checked = await readPublicationFacts(await this.connection(), this.options);
    }
    const { facts, walLsn } = checked;
    const verdict = judgePublication(facts, {
      ...this.options,
      tableOid: this.tableOid,
      lastGoodAt: this.lastGoodAt,
    });
    if (!verdict.ok) return driftError(verdict.message);
    this.tableOid = verdict.tableOid;
    this.lastGoodAt = new Date();
    if (walLsn > this.ceilingLsn) this.ceilingLsn = walLsn;
    return null;
  }

  private async connection(): Promise<pg.Client> {
    if (!this.opened) throw new Error('the publication check was closed');
    this.client ??= await connectPgClient({ connectionString: this.sessionUrl });
    return this.client;
  }

  private dropConnection(): void {
    const client = this.client;
    this.client = null;
    void client?.end().catch(() => {});
  }
}
