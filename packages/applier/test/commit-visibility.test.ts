/**
 * A commit is in the WAL, so with the relay, Kafka and the applier, before new
 * snapshots see it: the committing backend leaves the proc array only after
 * its WAL flush and, with synchronous replication, after the standby's reply.
 * The applier must not mark a request while its row is still invisible, or it
 * never marks it. Synchronous replication to a standby that does not exist
 * holds a commit in exactly that state for as long as the test likes.
 */
import { randomUUID } from 'node:crypto';
import { type WalnutFixture, waitFor, walnutFixture } from '@walnut/stack';
import pg from 'pg';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';

const visibility = suite<{ walnut: WalnutFixture }>('commit visibility');

visibility.before(async (ctx) => {
  ctx.walnut = await walnutFixture('commit_visibility', { env: { APPLIER_HTTP_PORT: '0' } });
  await ctx.walnut.startRelay();
  await ctx.walnut.startApplier();
});

visibility.after(async ({ walnut }) => {
  await setSynchronousStandby(walnut, null);
  await walnut.close();
});

/** Cluster-wide, so it is undone in `after` whatever happens. */
async function setSynchronousStandby(walnut: WalnutFixture, name: string | null): Promise<void> {
  await walnut.pool.query(
    name === null
      ? 'ALTER SYSTEM RESET synchronous_standby_names'
      : `ALTER SYSTEM SET synchronous_standby_names = '${name}'`,
  );
  await walnut.pool.query('SELECT pg_reload_conf()');
}

visibility('a request committed but not yet visible is marked applied once it is', async ({ walnut }) => {
  const requestId = randomUUID();
  const key = `held-${requestId.slice(0, 8)}`;
  const client = new pg.Client({ connectionString: walnut.databaseUrl });
  await client.connect();
  let held: Promise<unknown> = Promise.resolve();
  const writerPid = (await client.query('SELECT pg_backend_pid() AS pid')).rows[0]?.pid;
  const canary = new pg.Client({ connectionString: walnut.databaseUrl });
  await canary.connect();
  const canaryPid = (await canary.query('SELECT pg_backend_pid() AS pid')).rows[0]?.pid;
  let canaryHeld: Promise<unknown> = Promise.resolve();
  const waitingFor = async (pid: number, event: string) =>
    (await walnut.pool.query('SELECT 1 FROM pg_stat_activity WHERE pid = $1 AND wait_event = $2', [pid, event]))
      .rowCount === 1;
  try {
    const standby = 'walnut_test_standby_that_does_not_exist';
    await setSynchronousStandby(walnut, standby);
    // pg_reload_conf() only signals: a session takes the new value between commands.
    await waitFor(
      'the writer session to see the synchronous standby setting',
      async () => (await client.query('SHOW synchronous_standby_names')).rows[0]?.synchronous_standby_names === standby,
      { timeoutMs: 10_000, intervalMs: 10 },
    );
    // A commit waits for a standby only once the checkpointer too has read the new setting (it
    // sets the shared flag commits check), which on a loaded machine came after the writer's
    // commit: so small commits first, one after another, until one is held (released with the
    // writer). Each writes WAL, a logical message no relay here asks for: a commit that wrote
    // none, such as one of txid_current() alone, never waits for a standby.
    let canaryCommitted = true;
    await waitFor(
      'a commit to wait for the standby',
      async () => {
        if (canaryCommitted) {
          canaryCommitted = false;
          canaryHeld = canary.query("SELECT pg_logical_emit_message(true, 'walnut_test_canary', '')").finally(() => {
            canaryCommitted = true;
          });
        }
        return waitingFor(canaryPid, 'SyncRep');
      },
      { timeoutMs: 20_000, intervalMs: 10 },
    );
    // The API's transaction, by hand: the outbox row and the request row together.
    held = client.query(
      `WITH o AS (
         INSERT INTO outbox (id, aggregatetype, aggregateid, type, payload)
         VALUES ($1::uuid, 'kv', $2::text, 'kv.set',
                 jsonb_build_object('op', 'set', 'key', $2::text, 'value', 1, 'request_id', $1::text)))
       INSERT INTO requests (request_id, key, keys) VALUES ($1::uuid, $2::text, ARRAY[$2::text])`,
      [requestId, key],
    );
    // Relayed while the writer still waits for the standby, so invisible to
    // everyone else: wait for the applier to hold the batch, either waiting for
    // visibility (the fix) or having applied it and waiting for the standby
    // itself (the bug: it marked nothing), then release.
    await waitFor('the writer to wait for the standby', () => waitingFor(writerPid, 'SyncRep'), {
      timeoutMs: 10_000,
      intervalMs: 10,
    });
    await waitFor(
      'the applier to reach the held commit',
      async () => {
        const { rowCount } = await walnut.pool.query(
          `SELECT 1 FROM pg_stat_activity
            WHERE pid <> $1 AND pid <> $2 AND datname = current_database()
              AND (wait_event = 'SyncRep' OR (query LIKE '%apply_kv_batch%' AND wait_event = 'PgSleep'))`,
          [writerPid, canaryPid],
        );
        return (rowCount ?? 0) > 0;
      },
      { timeoutMs: 20_000, intervalMs: 10 },
    ).catch(async (error) => {
      const { rows } = await walnut.pool.query(
        `SELECT pid, state, wait_event, left(query, 80) AS query FROM pg_stat_activity WHERE datname = current_database()`,
      );
      throw new Error(`${error}; sessions: ${JSON.stringify(rows)}`);
    });
    const seen = await walnut.pool.query('SELECT 1 FROM requests WHERE request_id = $1', [requestId]);
    assert.is(seen.rowCount, 0, 'the request row is not visible yet');
  } finally {
    // Released before anything else: a writer waiting for the standby would hold up the rest.
    await setSynchronousStandby(walnut, null);
    await held;
    await canaryHeld;
    await Promise.all([client.end(), canary.end()]);
  }
  await waitFor(
    'the request marked applied',
    async () =>
      (await walnut.pool.query('SELECT 1 FROM requests WHERE request_id = $1 AND applied_at IS NOT NULL', [requestId]))
        .rowCount === 1,
    { timeoutMs: 10_000 },
  );
});

visibility('a 32-bit transaction id widens to the xid8 nearest the snapshot, in either epoch', async ({ walnut }) => {
  // The relay sends 32-bit ids (pgoutput's); the wait compares them with xid8 snapshots.
  // Migration 0004 put an id above xmax in the previous epoch: from the second epoch on,
  // a commit newer than a transaction still running looked long finished.
  const epoch = 2n ** 32n;
  const cases: Array<[xid: bigint, near: bigint, widened: bigint]> = [
    [7n, 3n, 7n], // above xmax, first epoch
    [5n, epoch + 3n, epoch + 5n], // above xmax, second epoch: the case 0004 got wrong
    [epoch - 2n, epoch + 3n, epoch - 2n], // just before the epoch turned
    [3n, epoch - 1n, epoch + 3n], // just after it turns
    [epoch - 1n, 3n, 0n], // before the cluster's first xid: invalid, so never waited for
  ];
  for (const [xid, near, widened] of cases) {
    const { rows } = await walnut.pool.query('SELECT walnut.xid8_near($1, $2)::text AS x', [
      xid.toString(),
      near.toString(),
    ]);
    assert.is(rows[0]?.x, widened.toString(), `xid ${xid} near ${near}`);
  }
});

visibility.run();
