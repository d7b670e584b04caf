-- walnut.apply_kv_batch as in migration 0004 (which explains it), with a
-- correct and cheaper wait for the writing transactions' visibility: an id
-- above the snapshot's xmax is now waited for (0004 took it for an id of the
-- previous epoch, so visible), ids are widened once, a snapshot per retry
-- instead of two per id, finished ids below xmin are skipped, and retries back
-- off. Under load the old wait spun on the CPU the writers it waited for needed.
-- And requests of one key are no longer locked before they are marked.
-- A 32-bit xid as the xid8 nearest to `near` (a full xid8 as bigint): within
-- 2^31 below or above it, as Postgres compares 32-bit xids. Inlined (one
-- expression, IMMUTABLE), so it costs no function call per id.
CREATE OR REPLACE FUNCTION walnut.xid8_near(xid32 bigint, near bigint) RETURNS xid8
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT greatest(near + (xid32 - (near & 4294967295) + 6442450944) % 4294967296 - 2147483648, 0)::text::xid8
$$;
--> statement-breakpoint
-- 0004's xid8_of, which docs/relay.md offers to consumers of walnut-xid, with
-- the same fix: an id above the snapshot's xmax is in xmax's epoch, not the
-- one before.
CREATE OR REPLACE FUNCTION walnut.xid8_of(xid32 bigint, snap pg_snapshot) RETURNS xid8
LANGUAGE sql STABLE AS $$
  SELECT walnut.xid8_near(xid32, pg_snapshot_xmax(snap)::text::bigint)
$$;
--> statement-breakpoint
CREATE OR REPLACE FUNCTION walnut.apply_kv_batch(
  batch_rows jsonb, batch_requests jsonb, batch_xids bigint[], max_wait_ms int,
  channel text, notify_chunk int)
RETURNS TABLE (upserted_rows int, marked_requests int, visibility_wait_ms int)
LANGUAGE plpgsql VOLATILE
-- The marking UPDATE read all of `requests` on every call (14.5 ms a call of
-- 5 rows, a core at 1,000 writes/s; issue 26): the planner took the batch for
-- 100 rows (jsonb_to_recordset's fixed guess) and, below ~130,000 requests,
-- chose a hash join over a sequential scan; and PL/pgSQL then kept that plan
-- as its generic plan for the connection's life. The batch's requests now go
-- in as arrays, which unnest's estimate counts, and each call is planned with
-- them: index lookups for a few rows, whatever the table's size then was.
-- Sequential scans are off too: every statement here looks rows up by key,
-- and with stale statistics the planner still chose a scan of all `requests`
-- for 45 of 13,170 calls of a few rows each in the bench.
SET plan_cache_mode = force_custom_plan
SET enable_seqscan = off
AS $$
#variable_conflict use_column
DECLARE
  n_upserted int;
  n_marked int;
  started timestamptz := clock_timestamp();
  waited_ms int;
  snap pg_snapshot := pg_current_snapshot();
  snap_xmax bigint := pg_snapshot_xmax(snap)::text::bigint;
  writers xid8[];
  pause float8 := 0.0005;
  request_ids uuid[];
  commit_versions numeric[];
BEGIN
  SELECT array_agg(b.request_id), array_agg(b.commit_version) INTO request_ids, commit_versions
    FROM jsonb_to_recordset(batch_requests) AS b(request_id uuid, commit_version numeric);

  -- A commit reaches the WAL, and so the relay, Kafka and us, before the
  -- committing backend leaves the proc array: for a moment (longer under load
  -- or with synchronous replication) new snapshots still see the transaction
  -- as running, and its requests rows as absent. Marking then would miss them
  -- for good, so wait until every writing transaction is visible.
  --
  -- Each 32-bit id is widened to the xid8 nearest the snapshot's xmax (within
  -- 2^31 either way). 0004's walnut.xid8_of put an id above xmax in the
  -- previous epoch, so a commit with a newer id than a transaction still
  -- running looked long finished, and was not waited for. Widened once: the
  -- ids are seconds old at most, so the first snapshot's xmax serves every
  -- retry. An id below the snapshot's xmin has finished, without a lookup.
  -- The retries back off from 0.5 to 8 ms: under load, 0004's re-check of
  -- every id every millisecond (two snapshots each) took the CPU that the
  -- writers it waited for needed (issue 26).
  SELECT array_agg(walnut.xid8_near(x.xid, snap_xmax)) INTO writers FROM unnest(batch_xids) AS x(xid);
  LOOP
    EXIT WHEN NOT EXISTS (SELECT 1 FROM unnest(writers) AS w(xid)
                           WHERE w.xid >= pg_snapshot_xmin(snap) AND NOT pg_visible_in_snapshot(w.xid, snap));
    EXIT WHEN clock_timestamp() >= started + make_interval(secs => max_wait_ms / 1000.0);
    PERFORM pg_sleep(pause);
    pause := least(pause * 2, 0.008);
    snap := pg_current_snapshot();
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
  -- snapshot sees the other's committed half. A request of one key has no
  -- other half: it is not locked here (the lock wrote a WAL record per row,
  -- a quarter of the function's time for single-key writes), and two appliers
  -- marking it both see their own upsert, the second waiting for the first's.
  PERFORM 1 FROM requests
   WHERE request_id = ANY (request_ids)
     AND applied_at IS NULL AND cardinality(keys) > 1
   ORDER BY request_id
     FOR UPDATE;

  -- A request is applied once every key it wrote holds its commit's version or
  -- a newer one. The marked ids are NOTIFYed in chunks, delivered at commit.
  WITH marked AS (
    UPDATE requests r SET applied_at = now()
      FROM unnest(request_ids, commit_versions) AS b(request_id, commit_version)
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
