import { resolvePgUrl } from '@walnut/schema';
import pg from 'pg';
import { SERVER_WAL_LSN_SQL } from './server-wal-lsn.ts';

/**
 * A slot's figures as Postgres has them, from one query: what `walnut-relay slot
 * status` prints, what the status page shows and what the slot gauges export.
 * (walnut.replication_status, drizzle/0001, is the same for psql users.)
 */
export interface SlotFigures {
  active: boolean;
  activePid: number | null;
  /** As Postgres prints it (confirmed_flush_lsn::text): shown, never compared; slot.ts reads it as an Lsn. */
  confirmedLsn: string | null;
  /** WAL written since the slot's confirmed LSN. */
  lagBytes: number | null;
  lagPretty: string | null;
  /** WAL the slot keeps from being removed (since its restart LSN). */
  retainedWalBytes: number | null;
  retainedWalPretty: string | null;
  walStatus: string | null;
  /** pg_stat_replication's flush_lag of the relay's walsender: how late its confirmations are. */
  lagSeconds: number | null;
  maxSlotWalKeepSize: string | null;
  /** max_slot_wal_keep_size in bytes; null when it is -1 (the slot may hold WAL without limit). */
  maxSlotWalKeepBytes: number | null;
  /** The slot is synchronized to standbys (Postgres 17+; null before). */
  failover: boolean | null;
  /** On a standby: the slot is a synced copy of the primary's (Postgres 17+; null before). */
  synced: boolean | null;
  /** Since when no walsender streams from the slot (Postgres 17+; null before, and while active). */
  inactiveSince: string | null;
  /** Why Postgres invalidated the slot (Postgres 17+; null before: see walStatus 'lost'). */
  invalidationReason: string | null;
}

const SLOT_FIGURES_SQL = `
  SELECT s.active, s.active_pid, s.confirmed_flush_lsn::text AS confirmed, s.wal_status,
         lag, pg_size_pretty(lag) AS lag_pretty,
         retained, pg_size_pretty(retained) AS retained_pretty,
         extract(epoch FROM r.flush_lag)::float8 AS lag_seconds,
         current_setting('max_slot_wal_keep_size') AS keep,
         pg_size_bytes(current_setting('max_slot_wal_keep_size'))::bigint AS keep_bytes,
         -- Columns of Postgres 17+, read through to_jsonb so the query also runs on 14-16.
         (to_jsonb(s) ->> 'failover')::boolean AS failover,
         (to_jsonb(s) ->> 'synced')::boolean AS synced,
         to_jsonb(s) ->> 'inactive_since' AS inactive_since,
         to_jsonb(s) ->> 'invalidation_reason' AS invalidation_reason
    FROM pg_replication_slots s
    LEFT JOIN pg_stat_replication r ON r.pid = s.active_pid,
    LATERAL (SELECT pg_wal_lsn_diff(${SERVER_WAL_LSN_SQL}, s.confirmed_flush_lsn)::bigint AS lag,
                    pg_wal_lsn_diff(${SERVER_WAL_LSN_SQL}, s.restart_lsn)::bigint AS retained) AS d
   WHERE s.slot_name = $1`;

/** The slot's figures; undefined when the slot does not exist. */
export async function querySlotFigures(client: pg.ClientBase, slot: string): Promise<SlotFigures | undefined> {
  const row = (await client.query(SLOT_FIGURES_SQL, [slot])).rows[0];
  if (!row) return undefined;
  const num = (v: unknown) => (v === null || v === undefined ? null : Number(v));
  return {
    active: row.active,
    activePid: row.active_pid,
    confirmedLsn: row.confirmed ?? null,
    lagBytes: num(row.lag),
    lagPretty: row.lag_pretty,
    retainedWalBytes: num(row.retained),
    retainedWalPretty: row.retained_pretty,
    walStatus: row.wal_status,
    lagSeconds: num(row.lag_seconds),
    maxSlotWalKeepSize: row.keep ?? null,
    // pg_size_bytes('-1') is -1: unlimited.
    maxSlotWalKeepBytes: row.keep_bytes === null || Number(row.keep_bytes) < 0 ? null : Number(row.keep_bytes),
    failover: row.failover ?? null,
    synced: row.synced ?? null,
    inactiveSince: row.inactive_since === null ? null : new Date(row.inactive_since).toISOString(),
    invalidationReason: row.invalidation_reason ?? null,
  };
}

export interface SlotFiguresProbeOptions {
  /** How long one answer serves every caller, in ms; 1000 by default. */
  maxAgeMs?: number;
  /** Called for each query actually sent (walnut_relay_slot_queries_total). */
  onQuery?: () => void;
}

/**
 * One lazily opened connection for the status page and the slot gauges,
 * reopened after a failure.
 *
 * /status.json and /metrics are open and each asks for the figures: one query at
 * a time is sent, shared by every caller while it runs, and its answer serves
 * them for `maxAgeMs`. Otherwise a flood of requests queues as many queries on
 * this one connection, and the page polls once a second anyway.
 */
export class SlotFiguresProbe {
  private client: pg.Client | null = null;
  private inFlight: Promise<SlotFigures | null> | null = null;
  private last: { at: number; figures: SlotFigures | null } | null = null;
  private readonly maxAgeMs: number;
  private readonly onQuery: () => void;

  constructor(
    private readonly url: string,
    private readonly slot: string,
    options: SlotFiguresProbeOptions = {},
  ) {
    this.maxAgeMs = options.maxAgeMs ?? 1000;
    this.onQuery = options.onQuery ?? (() => {});
  }

  /** The slot's figures, at most `maxAgeMs` old; null when the slot does not exist. */
  figures(): Promise<SlotFigures | null> {
    const last = this.last;
    if (last && performance.now() - last.at < this.maxAgeMs) return Promise.resolve(last.figures);
    // A failure is not kept: it reaches every caller of that query, and the next one tries again.
    this.inFlight ??= this.query()
      .then((figures) => {
        this.last = { at: performance.now(), figures };
        return figures;
      })
      .finally(() => {
        this.inFlight = null;
      });
    return this.inFlight;
  }

  private async query(): Promise<SlotFigures | null> {
    try {
      if (!this.client) {
        const client = new pg.Client({ connectionString: await resolvePgUrl(this.url) });
        client.on('error', () => {
          if (this.client === client) this.client = null;
        });
        await client.connect();
        this.client = client;
      }
      this.onQuery();
      return (await querySlotFigures(this.client, this.slot)) ?? null;
    } catch (error) {
      await this.close();
      throw error;
    }
  }

  async close(): Promise<void> {
    const client = this.client;
    this.client = null;
    await client?.end().catch(() => {});
  }
}
