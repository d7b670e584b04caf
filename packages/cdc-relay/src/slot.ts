import { type Lsn, parseLsn } from '@walnut/schema';
import pg from 'pg';
import { RelayError } from './errors.ts';
import type { OutboxMapping } from './outbox-mapping.ts';
import { invalidationReason, type SlotInvalidationColumns, slotInvalidatedError } from './slot-invalidation.ts';
import { createPublication } from './slot-lifecycle.ts';

/** Facts about the server the relay needs before it streams. */
export interface ServerFacts {
  /** pg_control_system().system_identifier: differs between clusters, so two clusters' same-named slots never share a Kafka transactional id. */
  systemIdentifier: string;
  database: string;
  /** The server's wal_sender_timeout; 0 when disabled. */
  walSenderTimeoutMs: number;
  /** server_version_num, e.g. 170010: failover slots need 17+. */
  serverVersionNum: number;
  /** pg_is_in_recovery(): DATABASE_URL names a hot standby (logical decoding there needs 16+). */
  inRecovery: boolean;
}

export type SlotState = ServerFacts &
  (
    | {
        status: 'ready';
        confirmedFlushLsn: Lsn;
        /** Whether the slot is synchronized to standbys; null before Postgres 17. */
        failover: boolean | null;
      }
    | { status: 'missing' }
    | { status: 'busy'; activePid: number; client: string | null }
  );

/**
 * Checks the server can serve logical replication, makes sure the publication
 * (outbox inserts only) exists, and reports the slot: ready to resume from the
 * LSN last confirmed (i.e. acked by Kafka), held by another connection, or
 * missing. Creating a missing slot is the caller's decision: a relay that has
 * relayed before must not silently start again from "now".
 */
export async function inspectSlot(
  client: pg.Client,
  opts: { slot: string; publication: string; outbox: OutboxMapping },
): Promise<SlotState> {
  const settings = await client.query<{
    wal_level: string;
    wal_sender_timeout_ms: string;
    system_identifier: string;
    database: string;
    server_version_num: string;
    in_recovery: boolean;
  }>(
    `SELECT current_setting('wal_level') AS wal_level,
            current_setting('server_version_num') AS server_version_num,
            (SELECT setting FROM pg_settings WHERE name = 'wal_sender_timeout') AS wal_sender_timeout_ms,
            (SELECT system_identifier::text FROM pg_control_system()) AS system_identifier,
            current_database() AS database,
            pg_is_in_recovery() AS in_recovery`,
  );
  const row = settings.rows[0];
  if (row?.wal_level !== 'logical') {
    throw new RelayError(
      'WAL_LEVEL_NOT_LOGICAL',
      `Postgres has wal_level=${row?.wal_level}; set wal_level=logical in postgresql.conf and restart Postgres`,
      { retryable: false },
    );
  }
  const facts: ServerFacts = {
    systemIdentifier: row.system_identifier,
    database: row.database,
    walSenderTimeoutMs: Number(row.wal_sender_timeout_ms),
    serverVersionNum: Number(row.server_version_num),
    inRecovery: row.in_recovery,
  };
  if (facts.inRecovery && facts.serverVersionNum < 160_000) {
    throw new RelayError(
      'STANDBY_DECODING_UNSUPPORTED',
      `DATABASE_URL names a hot standby running Postgres ${Math.floor(facts.serverVersionNum / 10_000)}, and logical decoding on a standby needs Postgres 16+: point DATABASE_URL at the primary (with several hosts, add target_session_attrs=read-write), or upgrade (docs/relay.md, Streaming from a standby)`,
      { retryable: false },
    );
  }

  const table = `${pg.escapeIdentifier(opts.outbox.schema)}.${pg.escapeIdentifier(opts.outbox.table)}`;
  const exists = await client.query<{ oid: string | null }>('SELECT to_regclass($1)::text AS oid', [table]);
  if (!exists.rows[0]?.oid) {
    throw new RelayError('OUTBOX_TABLE_MISSING', `outbox table ${table} does not exist (yet)`, {
      retryable: true,
    });
  }

  const publication = await client.query('SELECT 1 FROM pg_publication WHERE pubname = $1', [opts.publication]);
  if (publication.rowCount === 0) {
    if (facts.inRecovery) {
      throw new RelayError(
        'CONFIG_INVALID',
        `publication ${opts.publication} does not exist, and the relay streams from a standby, which cannot create it: on the primary, as the owner of ${table}, run CREATE PUBLICATION ${pg.escapeIdentifier(opts.publication)} FOR TABLE ${table} WITH (publish = 'insert') (docs/relay.md, Streaming from a standby)`,
        { retryable: false },
      );
    }
    await createPublication(client, opts.publication, opts.outbox);
  }

  const slot = await readSlot(client, opts.slot);
  if (!slot) return { ...facts, status: 'missing' };
  if (slot.plugin !== 'pgoutput' || slot.database !== facts.database) {
    throw new RelayError(
      'CONFIG_INVALID',
      `slot ${opts.slot} exists with plugin ${slot.plugin} on database ${slot.database}; choose another RELAY_SLOT`,
      { retryable: false },
    );
  }
  const invalidated = invalidationReason(slot);
  if (invalidated) throw slotInvalidatedError(opts.slot, invalidated);
  if (slot.active_pid !== null) return { ...facts, status: 'busy', activePid: slot.active_pid, client: slot.client };
  return {
    ...facts,
    status: 'ready',
    confirmedFlushLsn: parseLsn(slot.confirmed_flush_lsn ?? '0/0'),
    failover: slot.failover,
  };
}

interface SlotRow extends SlotInvalidationColumns {
  plugin: string;
  database: string;
  active_pid: number | null;
  client: string | null;
  confirmed_flush_lsn: string | null;
  failover: boolean | null;
}

async function readSlot(client: pg.Client, slot: string): Promise<SlotRow | undefined> {
  const result = await client.query<SlotRow>(
    `SELECT s.plugin, s.database, s.active_pid,
            host(a.client_addr) || ':' || a.client_port AS client,
            s.confirmed_flush_lsn::text AS confirmed_flush_lsn, s.wal_status,
            -- Columns of newer servers (failover, invalidation_reason: 17+; conflicting: 16+),
            -- null where absent: to_jsonb keeps the query valid on 14-16.
            (to_jsonb(s) ->> 'failover')::boolean AS failover,
            to_jsonb(s) ->> 'invalidation_reason' AS invalidation_reason,
            to_jsonb(s) ->> 'conflicting' AS conflicting,
            pg_is_in_recovery() AS in_recovery
       FROM pg_replication_slots s LEFT JOIN pg_stat_activity a ON a.pid = s.active_pid
      WHERE s.slot_name = $1`,
    [slot],
  );
  return result.rows[0];
}

/** Postgres's default wal_sender_timeout, for when the server's is disabled (0). */
const DEFAULT_WAL_SENDER_TIMEOUT_MS = 60_000;
const SLOT_BUSY_MARGIN_MS = 10_000;

/**
 * How long a relay keeps retrying a slot another connection holds. A relay
 * whose host died leaves its walsender holding the slot until the server's
 * wal_sender_timeout notices, so a replacement must outwait that (the old
 * fixed 30 s default gave up before the server's 60 s default had passed).
 */
export function slotBusyTimeoutMs(configuredMs: number | undefined, walSenderTimeoutMs: number | undefined): number {
  if (configuredMs !== undefined) return configuredMs;
  const serverMs = walSenderTimeoutMs && walSenderTimeoutMs > 0 ? walSenderTimeoutMs : DEFAULT_WAL_SENDER_TIMEOUT_MS;
  return serverMs + SLOT_BUSY_MARGIN_MS;
}
