/**
 * What the relay tells Postgres in its standby status updates: the confirmed LSN
 * right after the last acks (not on the next status tick), and a reply_time
 * Postgres reads as "now".
 */
import { formatLsn } from '@walnut/schema';
import { waitConfirmed, waitFor, walInsertLsn, walnutSuite } from '@walnut/stack';
import * as assert from 'uvu/assert';

const status = walnutSuite('standby status updates', 'status_report');

// Regression: pg-logical-replication 2.5.0 counted from 946080000000 ms instead
// of 2000-01-01 (946684800000) and wrote the low word in ms, so reply_time in
// pg_stat_replication (and walnut.replication_status) was about 7 days ahead.
status('reply_time is within 5 s of now()', async ({ walnut }) => {
  const relay = await walnut.startRelay({ RELAY_STATUS_INTERVAL_MS: '200' });
  const skew = await waitFor(
    'a status report',
    async () => {
      const r = await walnut.pool.query<{ skew_s: number | null }>(
        `SELECT extract(epoch FROM (now() - reply_time))::float8 AS skew_s
           FROM pg_stat_replication r JOIN pg_replication_slots s ON s.active_pid = r.pid
          WHERE s.slot_name = $1 AND reply_time IS NOT NULL`,
        [walnut.slot],
      );
      return r.rows[0]?.skew_s ?? undefined;
    },
    { timeoutMs: 15_000 },
  );
  assert.ok(Math.abs(skew) < 5, `reply_time is ${skew.toFixed(1)} s from now()`);
  await relay.stop('SIGTERM');
});

// Regression: after a burst, acks that came within 50 ms of the previous report
// were only reported on the next status tick (or the server's keepalive), and a
// crash in between replayed them.
status('the last acks of a burst are confirmed without waiting for the status timer', async ({ walnut }) => {
  const relay = await walnut.startRelay({ RELAY_STATUS_INTERVAL_MS: '600000' });
  for (let round = 0; round < 3; round++) {
    for (let i = 0; i < 30; i++) {
      await walnut.pool.query(
        `INSERT INTO outbox (id, aggregatetype, aggregateid, type, payload)
         VALUES (gen_random_uuid(), 'kv', 'k' || $1::text, 'kv.set', '{}')`,
        [i],
      );
    }
    const end = await walInsertLsn(walnut.pool);
    const started = performance.now();
    await waitConfirmed(walnut.pool, walnut.slot, end, {
      what: `round ${round}: the slot confirmed past ${formatLsn(end)}`,
      timeoutMs: 5_000,
      intervalMs: 20,
    });
    assert.ok(performance.now() - started < 5_000);
  }
  await relay.stop('SIGTERM');
});

status.run();
