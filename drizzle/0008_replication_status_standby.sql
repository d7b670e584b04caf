-- walnut.replication_status reads on a hot standby too (issue 23's should-have: the relay may
-- stream from a standby's own slot on 16+). pg_current_wal_lsn() raises "recovery is in
-- progress" there, so lag and retained WAL are measured from how far the standby has replayed.
-- Same columns, same order.
CREATE OR REPLACE VIEW walnut.replication_status AS
SELECT s.slot_name,
       s.database,
       s.active,
       s.active_pid,
       s.confirmed_flush_lsn,
       pg_wal_lsn_diff((CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END), s.confirmed_flush_lsn)::bigint AS lag_bytes,
       pg_size_pretty(pg_wal_lsn_diff((CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END), s.confirmed_flush_lsn)) AS lag_pretty,
       pg_wal_lsn_diff((CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END), s.restart_lsn)::bigint AS retained_wal_bytes,
       pg_size_pretty(pg_wal_lsn_diff((CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END), s.restart_lsn)) AS retained_wal_pretty,
       s.wal_status,
       s.safe_wal_size,
       r.reply_time AS last_confirmed_at,
       (to_jsonb(s) ->> 'failover')::boolean AS failover,
       (to_jsonb(s) ->> 'synced')::boolean AS synced,
       (to_jsonb(s) ->> 'inactive_since')::timestamptz AS inactive_since,
       to_jsonb(s) ->> 'invalidation_reason' AS invalidation_reason
  FROM pg_replication_slots s
  LEFT JOIN pg_stat_replication r ON r.pid = s.active_pid
 WHERE s.slot_type = 'logical';
