/**
 * The server's WAL position as SQL, on a primary and on a hot standby alike:
 * pg_current_wal_lsn() raises "recovery is in progress" on a standby, where
 * the relay may stream from (Postgres 16+), so there the position is how far
 * it has replayed. pg_current_wal_lsn() is volatile, so the branch not taken
 * is never evaluated.
 */
export const SERVER_WAL_LSN_SQL =
  '(CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END)';
