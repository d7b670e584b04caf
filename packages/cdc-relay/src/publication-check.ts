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
 * The decision is pure (judgePublication, publication-verdict.ts); the queries
 * (publication-facts.ts) and the timer (PublicationGuard, here) are the edge.
 * Only catalogs any role may read are used: a least-privilege relay need not
 * own the table or the publication.
 */
import type { Lsn } from '@walnut/schema';
import type pg from 'pg';
import { type RelayError, toRelayError } from './errors.ts';
import { connectPgClient } from './pg-client.ts';
import type { Relation } from './pgoutput.ts';
import { type CheckedFacts, readPublicationFacts } from './publication-facts.ts';
import { driftError, judgePublication, PUBLISHED } from './publication-verdict.ts';

export interface GuardOptions {
  databaseUrl: string;
  publication: string;
  schema: string;
  table: string;
  checkIntervalMs: number;
}

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
