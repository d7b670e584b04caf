/**
 * A slot that Postgres invalidated (WAL past max_slot_wal_keep_size removed;
 * on 18 also idle past idle_replication_slot_timeout) has lost events for
 * good: the relay must refuse it with one clear fatal line giving the server's
 * reason and naming replay, not stream from it as if nothing happened.
 */
import { startWalnutProcess, type WalnutFixture, waitFor, walnutFixture } from '@walnut/stack';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';

const invalidated = suite<{ walnut: WalnutFixture; superuser: boolean }>('invalidated slot');

invalidated.before(async (ctx) => {
  ctx.walnut = await walnutFixture('invalidated');
  const r = await ctx.walnut.pool.query(`SELECT rolsuper FROM pg_roles WHERE rolname = current_user`);
  ctx.superuser = r.rows[0]?.rolsuper === true;
});

invalidated.after(async ({ walnut, superuser }) => {
  if (superuser) {
    await walnut.pool.query('ALTER SYSTEM RESET max_slot_wal_keep_size');
    const v = await walnut.pool.query(`SELECT current_setting('server_version_num')::int AS v`);
    if (v.rows[0].v >= 180_000) await walnut.pool.query('ALTER SYSTEM RESET idle_replication_slot_timeout');
    await walnut.pool.query('SELECT pg_reload_conf()');
  }
  await walnut.close();
});

invalidated('the relay exits non-zero with SLOT_INVALIDATED and what to do', async ({ walnut, superuser }) => {
  if (!superuser) {
    console.log('  invalidated slot: skipped, ALTER SYSTEM needs a superuser on this DATABASE_URL');
    return;
  }
  const { pool, slot } = walnut;
  // The cap applies to every slot of the cluster: never run this next to someone else's.
  const others = await pool.query('SELECT slot_name FROM pg_replication_slots');
  if (others.rowCount) {
    console.log(`  invalidated slot: skipped, the cluster has other slots (${others.rows.map((r) => r.slot_name)})`);
    return;
  }
  await pool.query(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, [slot]);
  // max_slot_wal_keep_size is reloadable: a tiny cap, then enough WAL and a checkpoint.
  await pool.query(`ALTER SYSTEM SET max_slot_wal_keep_size = '1MB'`);
  await pool.query('SELECT pg_reload_conf()');
  await pool.query('CREATE TABLE filler (pad text)');
  for (let i = 0; i < 4; i++) {
    await pool.query(`INSERT INTO filler SELECT repeat('x', 1000) FROM generate_series(1, 2000)`);
    await pool.query('SELECT pg_switch_wal()');
  }
  await pool.query('CHECKPOINT');
  const status = await pool.query(`SELECT wal_status FROM pg_replication_slots WHERE slot_name = $1`, [slot]);
  assert.is(status.rows[0]?.wal_status, 'lost', 'Postgres invalidated the slot');

  const relay = startWalnutProcess('relay', walnut.env);
  const fatal = await relay.waitForLine(/"level":60/, 30_000);
  assert.is(await relay.stop('SIGTERM'), 1);
  assert.match(fatal, '"code":"SLOT_INVALIDATED"');
  assert.match(fatal, 'Drop and recreate the slot');
  assert.match(fatal, '(wal_removed: ', 'the reason, as Postgres 17+ names it');
  assert.match(fatal, 'walnut-relay replay');
  console.log(`  invalidated slot: ${JSON.parse(fatal).msg}`);
});

invalidated(
  '18: a slot idle past idle_replication_slot_timeout stops the relay with reason idle_timeout',
  async ({ walnut, superuser }) => {
    const { pool, slot } = walnut;
    const v = (await pool.query(`SELECT current_setting('server_version_num')::int AS v`)).rows[0].v as number;
    if (v < 180_000) {
      console.log(`  idle slot: skipped, idle_replication_slot_timeout is new in Postgres 18 (server ${v})`);
      return;
    }
    if (!superuser) {
      console.log('  idle slot: skipped, ALTER SYSTEM needs a superuser on this DATABASE_URL');
      return;
    }
    const others = await pool.query('SELECT slot_name FROM pg_replication_slots WHERE slot_name <> $1', [slot]);
    if (others.rowCount) {
      console.log(`  idle slot: skipped, the cluster has other slots (${others.rows.map((r) => r.slot_name)})`);
      return;
    }
    // A fresh slot (the previous test left an invalidated one), then a timeout of 1 s (its unit
    // on 18 is seconds, reloadable); Postgres checks it at checkpoints.
    await pool.query('SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1', [
      slot,
    ]);
    await pool.query('ALTER SYSTEM RESET max_slot_wal_keep_size');
    await pool.query(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, [slot]);
    await pool.query(`ALTER SYSTEM SET idle_replication_slot_timeout = '1s'`);
    await pool.query('SELECT pg_reload_conf()');
    const reason = await waitFor(
      'Postgres invalidates the idle slot',
      async () => {
        await pool.query('CHECKPOINT');
        const r = await pool.query(`SELECT invalidation_reason FROM pg_replication_slots WHERE slot_name = $1`, [slot]);
        return r.rows[0]?.invalidation_reason ?? undefined;
      },
      { timeoutMs: 30_000, intervalMs: 500 },
    );
    assert.is(reason, 'idle_timeout');
    await pool.query('ALTER SYSTEM RESET idle_replication_slot_timeout');
    await pool.query('SELECT pg_reload_conf()');

    const relay = startWalnutProcess('relay', walnut.env);
    const fatal = await relay.waitForLine(/"level":60/, 30_000);
    assert.is(await relay.stop('SIGTERM'), 1);
    assert.match(fatal, '"code":"SLOT_INVALIDATED"');
    assert.match(fatal, '(idle_timeout: ');
    assert.match(fatal, 'idle_replication_slot_timeout');
    assert.match(fatal, 'walnut-relay replay');
    assert.not.match(fatal, 'max_slot_wal_keep_size', 'wal_status is lost here too, yet WAL was not the reason');
    console.log(`  idle slot: ${JSON.parse(fatal).msg}`);
  },
);

invalidated.run();
