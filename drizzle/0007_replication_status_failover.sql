-- walnut.replication_status gains the slot's failover facts (issue 23):
--   failover:            the slot is synchronized to standbys (17+; the relay asks for it at creation)
--   synced:              on a standby, the slot is a synced copy of the primary's (17+); trust a
--                        failover only once the standby's copy shows synced = true
--   inactive_since:      since when no relay has streamed from the slot (17+)
--   invalidation_reason: why Postgres invalidated the slot: wal_removed, rows_removed,
--                        wal_level_insufficient, idle_timeout (18) (17+; on 14-16 wal_status = 'lost')
-- Columns a server lacks read as NULL. They are read through to_jsonb(s) rather than
-- chosen once by server_version_num, so this one migration runs on 14..18 and the view
-- shows them as soon as pg_upgrade brings a server to a version that has them.
-- CREATE OR REPLACE VIEW may only append columns: the old ones keep their order.
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
       r.reply_time AS last_confirmed_at,
       (to_jsonb(s) ->> 'failover')::boolean AS failover,
       (to_jsonb(s) ->> 'synced')::boolean AS synced,
       (to_jsonb(s) ->> 'inactive_since')::timestamptz AS inactive_since,
       to_jsonb(s) ->> 'invalidation_reason' AS invalidation_reason
  FROM pg_replication_slots s
  LEFT JOIN pg_stat_replication r ON r.pid = s.active_pid
 WHERE s.slot_type = 'logical';
