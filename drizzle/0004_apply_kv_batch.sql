-- walnut.apply_kv_batch: what the applier does with one Kafka batch, as one
-- statement, so a batch costs the applier one round trip instead of five
-- (BEGIN, upsert, lock, mark, COMMIT); called outside a transaction block, the
-- call is its own transaction. Statements in a VOLATILE PL/pgSQL function each
-- take a fresh snapshot, which the lock-then-mark order below relies on.
--
-- batch_rows: [{key, value, version, deleted}], newest event per key.
-- batch_requests: [{request_id, commit_version}], commit_version being the
--   event version with its sequence bits zeroed (see packages/applier).
-- batch_xids: the writing transactions' 32-bit ids (the relay's walnut-xid).
-- max_wait_ms: longest wait for those transactions to become visible.

-- A 32-bit xid as the full xid8 it has in this cluster: the epoch of the
-- snapshot's xmax, or the one before when the xid lies above xmax's low bits.
CREATE OR REPLACE FUNCTION walnut.xid8_of(xid32 bigint, snap pg_snapshot) RETURNS xid8
LANGUAGE sql STABLE AS $$
  SELECT (CASE WHEN (hi | xid32) > xmax THEN (hi | xid32) - 4294967296 ELSE hi | xid32 END)::text::xid8
    FROM (SELECT pg_snapshot_xmax(snap)::text::bigint AS xmax,
                 pg_snapshot_xmax(snap)::text::bigint & -4294967296 AS hi) AS s
$$;
--> statement-breakpoint
CREATE OR REPLACE FUNCTION walnut.apply_kv_batch(
  batch_rows jsonb, batch_requests jsonb, batch_xids bigint[], max_wait_ms int,
  channel text, notify_chunk int)
RETURNS TABLE (upserted_rows int, marked_requests int, visibility_wait_ms int)
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_column
DECLARE
  n_upserted int;
  n_marked int;
  started timestamptz := clock_timestamp();
  waited_ms int;
BEGIN
  -- A commit reaches the WAL, and so the relay, Kafka and us, before the
  -- committing backend leaves the proc array: for a moment (longer under load
  -- or with synchronous replication) new snapshots still see the transaction
  -- as running, and its requests rows as absent. Marking then would miss them
  -- for good, so wait until every writing transaction is visible.
  WHILE EXISTS (SELECT 1 FROM unnest(batch_xids) AS x(xid)
                 WHERE NOT pg_visible_in_snapshot(walnut.xid8_of(x.xid, pg_current_snapshot()), pg_current_snapshot()))
        AND clock_timestamp() < started + make_interval(secs => max_wait_ms / 1000.0) LOOP
    PERFORM pg_sleep(0.001);
  END LOOP;
  waited_ms := (extract(epoch FROM clock_timestamp() - started) * 1000)::int;

  -- The version guard: a replayed, duplicated or reordered event never
  -- overwrites a newer value. A delete is an upsert too (a tombstone keeps its
  -- version), so an older set arriving later loses to it.
  INSERT INTO kvs (key, value, version, updated_at, deleted_at)
  SELECT r.key, r.value, r.version, now(), CASE WHEN r.deleted THEN now() END
    FROM jsonb_to_recordset(batch_rows) AS r(key text, value jsonb, version numeric, deleted boolean)
  ON CONFLICT (key) DO UPDATE
    SET value = excluded.value, version = excluded.version,
        updated_at = excluded.updated_at, deleted_at = excluded.deleted_at
    WHERE kvs.version < excluded.version;
  GET DIAGNOSTICS n_upserted = ROW_COUNT;

  -- Two appliers committing the two halves of one batch write at once would
  -- each miss the other's uncommitted half. Locking the request rows (in id
  -- order, so no deadlock) serializes them, and the next statement's fresh
  -- snapshot sees the other's committed half.
  PERFORM 1 FROM requests
   WHERE request_id IN (SELECT b.request_id
                          FROM jsonb_to_recordset(batch_requests) AS b(request_id uuid, commit_version numeric))
     AND applied_at IS NULL
   ORDER BY request_id
     FOR UPDATE;

  -- A request is applied once every key it wrote holds its commit's version or
  -- a newer one. The marked ids are NOTIFYed in chunks, delivered at commit.
  WITH marked AS (
    UPDATE requests r SET applied_at = now()
      FROM jsonb_to_recordset(batch_requests) AS b(request_id uuid, commit_version numeric)
     WHERE r.request_id = b.request_id AND r.applied_at IS NULL
       AND NOT EXISTS (
         SELECT 1 FROM unnest(r.keys) AS k(key) LEFT JOIN kvs ON kvs.key = k.key
          WHERE kvs.version IS NULL OR kvs.version < b.commit_version)
    RETURNING r.request_id
  ), chunks AS (
    SELECT request_id, (row_number() OVER () - 1) / notify_chunk AS chunk FROM marked
  ), notified AS (
    SELECT count(*)::int AS n, pg_notify(channel, string_agg(request_id::text, ',')) FROM chunks GROUP BY chunk
  )
  SELECT coalesce(sum(n), 0)::int INTO n_marked FROM notified;

  RETURN QUERY SELECT n_upserted, n_marked, waited_ms;
END $$;
