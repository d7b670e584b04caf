/**
 * Why Postgres invalidated a slot, and what the relay tells its operator. An
 * invalidated slot can never stream again: the events between the relay's last
 * confirmation and a new slot are only in the outbox table, so every message
 * names `walnut-relay replay`.
 *
 * Postgres 17+ reports the reason (pg_replication_slots.invalidation_reason).
 * 14-16 say only wal_status = 'lost' (16 also conflicting = true, for every
 * cause: measured on 16.14 with a slot past max_slot_wal_keep_size). Before 16
 * WAL removal is the only cause, and on a 16 primary too: the horizon and
 * wal_level conflicts happen only in recovery, so only a 16 standby leaves
 * the reason unknown.
 */
import { RelayError } from './errors.ts';

/** The slot columns that tell whether, and why, it was invalidated (absent columns are null). */
export interface SlotInvalidationColumns {
  wal_status: string | null;
  /** 17+ */
  invalidation_reason: string | null;
  /** 16+ (text from to_jsonb: 'true' / 'false') */
  conflicting: string | boolean | null;
  /** pg_is_in_recovery(): the server is a standby. */
  in_recovery: boolean;
}

/** The server's reason (17+), what 14-16 imply, or null when the slot is valid. */
export function invalidationReason(row: SlotInvalidationColumns): string | null {
  if (row.invalidation_reason) return row.invalidation_reason;
  const conflicting = row.conflicting === true || row.conflicting === 'true';
  if (row.wal_status !== 'lost' && !conflicting) return null;
  return row.in_recovery ? 'unknown' : 'wal_removed';
}

const WHY: Record<string, string> = {
  wal_removed: 'Postgres removed WAL the slot still needed, past max_slot_wal_keep_size',
  rows_removed:
    'catalog rows its decoding needs were vacuumed away (on a standby: hot_standby_feedback off, or no physical slot for it on the primary)',
  wal_level_insufficient: "the primary's wal_level went below logical",
  idle_timeout: 'no relay streamed from it for longer than idle_replication_slot_timeout',
  unknown:
    'Postgres 16 does not say why on a standby: WAL removed past max_slot_wal_keep_size, or a conflict with recovery',
};

/** SLOT_INVALIDATED, with the server's reason and the way back. */
export function slotInvalidatedError(slot: string, reason: string): RelayError {
  const why = WHY[reason] ?? 'see the server log';
  return new RelayError(
    'SLOT_INVALIDATED',
    `slot ${slot} was invalidated (${reason}: ${why}); events since the relay's last confirmation can no longer be streamed. Drop and recreate the slot (walnut-relay slot drop, slot create), then re-publish the gap from the outbox table with walnut-relay replay --since/--until (docs/relay.md, Replay and snapshot)`,
    { retryable: false },
  );
}
