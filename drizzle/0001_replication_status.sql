-- walnut.replication_status: per logical slot, how far behind the relay is and how
-- much WAL the slot retains, readable with psql by anyone who can see the catalogs:
--   psql "$DATABASE_URL" -c 'table walnut.replication_status'
-- lag_bytes: WAL written since the LSN the relay confirmed (i.e. Kafka acked).
-- retained_wal_bytes: WAL Postgres keeps for this slot (from restart_lsn).
-- wal_status 'lost' means the slot was invalidated (max_slot_wal_keep_size).
-- last_confirmed_at: when the active relay last reported (null while inactive).
CREATE SCHEMA IF NOT EXISTS walnut;
--> statement-breakpoint
CREATE OR REPLACE VIEW walnut.replication_status AS
SELECT s.slot_name,
       s.database,
       s.active,
       s.active_pid,
       s.confirmed_flush_lsn,
       pg_wal_lsn_diff(pg_current_wal_lsn(), s.confirmed_flush_lsn)::bigint AS lag_bytes,
       pg_size_pretty(pg_wal_lsn_diff(pg_current_wal_lsn(), s.confirmed_flush_lsn)) AS lag_pretty,
       pg_wal_lsn_diff(pg_current_wal_lsn(), s.restart_lsn)::bigint AS retained_wal_bytes,
       pg_size_pretty(pg_wal_lsn_diff(pg_current_wal_lsn(), s.restart_lsn)) AS retained_wal_pretty,
       s.wal_status,
       s.safe_wal_size,
       r.reply_time AS last_confirmed_at
  FROM pg_replication_slots s
  LEFT JOIN pg_stat_replication r ON r.pid = s.active_pid
 WHERE s.slot_type = 'logical';
