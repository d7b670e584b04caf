/**
 * Failover slots (issue 23): on Postgres 17+ every path that creates the slot
 * (the relay's first start, `slot create`, `snapshot`) creates it with
 * failover, so a standby with sync_replication_slots keeps a copy; with
 * RELAY_SLOT_FAILOVER=false it does not. An existing slot is brought in line
 * with the setting before the relay streams from it. On 14-16 the relay still
 * creates its slot and streams, and status shows the 17+ columns as null.
 * Run on a version with WALNUT_PG_VERSION / PG_BIN.
 */
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { readTopic, runRelayCli, startRelayCli, type WalnutFixture, waitFor, walnutSuite } from '@walnut/stack';
import * as assert from 'uvu/assert';

const failover = walnutSuite('failover slot', 'failover');

async function cli(
  walnut: WalnutFixture,
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  return runRelayCli(args, { ...walnut.env, ...env });
}

async function versionNum(walnut: WalnutFixture): Promise<number> {
  return Number((await walnut.pool.query(`SELECT current_setting('server_version_num') AS v`)).rows[0].v);
}

/** pg_replication_slots.failover, or null on a server without the column (14-16). */
async function slotFailover(walnut: WalnutFixture, slot: string): Promise<boolean | null | undefined> {
  const r = await walnut.pool.query(
    `SELECT (to_jsonb(s) ->> 'failover')::boolean AS failover FROM pg_replication_slots s WHERE slot_name = $1`,
    [slot],
  );
  return r.rowCount ? r.rows[0].failover : undefined;
}

async function dropSlot(walnut: WalnutFixture, slot: string): Promise<void> {
  await waitFor('slot released', async () => {
    const r = await walnut.pool.query('SELECT active FROM pg_replication_slots WHERE slot_name = $1', [slot]);
    return r.rows[0]?.active !== true;
  });
  await walnut.pool.query('SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1', [
    slot,
  ]);
}

failover('slot create: failover on by default on 17+, off with --slot-failover false', async ({ walnut }) => {
  const v = await versionNum(walnut);
  const slot = `${walnut.slot}_cli`;
  const created = await cli(walnut, ['slot', 'create', '--slot', slot]);
  assert.is(created.code, 0, created.stderr);
  if (v >= 170_000) {
    assert.match(created.stdout, '(failover on)');
    assert.is(await slotFailover(walnut, slot), true);
  } else {
    assert.match(created.stdout, '(failover off)');
    assert.match(created.stderr, 'cannot synchronize replication slots');
    assert.is(await slotFailover(walnut, slot), null, 'no failover column before 17');
  }
  const status = JSON.parse((await cli(walnut, ['slot', 'status', '--json', '--slot', slot])).stdout);
  assert.is(status.exists, true);
  assert.is(status.failover, v >= 170_000 ? true : null);
  assert.is(status.synced, v >= 170_000 ? false : null, 'a primary holds no synced slot');
  assert.is(status.invalidationReason, null);
  if (v >= 170_000) assert.ok(Date.parse(status.inactiveSince) > 0, status.inactiveSince);
  const view = await walnut.pool.query(
    'SELECT failover, synced, inactive_since, invalidation_reason FROM walnut.replication_status WHERE slot_name = $1',
    [slot],
  );
  assert.is(view.rows[0]?.failover, v >= 170_000 ? true : null);
  assert.is(view.rows[0]?.invalidation_reason, null);
  await dropSlot(walnut, slot);

  const off = await cli(walnut, ['slot', 'create', '--slot', slot, '--slot-failover', 'false']);
  assert.is(off.code, 0, off.stderr);
  assert.match(off.stdout, '(failover off)');
  assert.is(await slotFailover(walnut, slot), v >= 170_000 ? false : null);
  await dropSlot(walnut, slot);
  console.log(`  failover slot (server ${v}): slot create ${created.stdout.trim()}`);
});

failover(
  'the relay creates a failover slot, streams, and aligns an existing slot with the setting',
  async ({ walnut }) => {
    const v = await versionNum(walnut);
    const relay = await walnut.startRelay();
    if (v < 170_000) await relay.waitForLine(/cannot synchronize replication slots to standbys/);
    assert.is(await slotFailover(walnut, walnut.slot), v >= 170_000 ? true : null);
    await walnut.pool.query(
      `INSERT INTO outbox (id, aggregatetype, aggregateid, type, payload)
     VALUES (gen_random_uuid(), 'kv', 'failover', 'kv.set', '{"op":"set","key":"failover","value":1}')`,
    );
    const records = await readTopic(walnut.kafka, walnut.topic, (all) => all.some((r) => r.key === 'failover'));
    assert.ok(
      records.some((r) => r.key === 'failover'),
      'the relay streams',
    );
    assert.is(await relay.stop('SIGTERM'), 0);
    if (v < 170_000) return;

    // The same slot, now with the setting off: the relay turns failover off before streaming, and on again.
    const off = await walnut.startRelay({ RELAY_SLOT_FAILOVER: 'false' });
    await off.waitForLine(/set failover false on the existing replication slot/);
    assert.is(await slotFailover(walnut, walnut.slot), false);
    assert.is(await off.stop('SIGTERM'), 0);
    const on = await walnut.startRelay();
    await on.waitForLine(/set failover true on the existing replication slot/);
    assert.is(await slotFailover(walnut, walnut.slot), true);
    assert.is(await on.stop('SIGTERM'), 0);

    // A fresh slot with the setting off is created without failover.
    const slot = `${walnut.slot}_nofo`;
    const plain = await walnut.startRelay({ RELAY_SLOT: slot, RELAY_SLOT_FAILOVER: 'false' });
    assert.is(await slotFailover(walnut, slot), false);
    await plain.stop('SIGTERM');
    await dropSlot(walnut, slot);
  },
);

failover('snapshot creates the slot with failover on 17+, and without when the setting is off', async ({ walnut }) => {
  const v = await versionNum(walnut);
  for (const setting of ['true', 'false']) {
    const slot = `${walnut.slot}_snap_${setting}`;
    const progressFile = path.join(mkdtempSync(path.join(os.tmpdir(), 'walnut-failover-')), 'snapshot.json');
    const run = startRelayCli('snapshot', ['snapshot', '--no-stream', '--progress-file', progressFile], {
      ...walnut.env,
      RELAY_SLOT: slot,
      RELAY_SLOT_FAILOVER: setting,
    });
    const start = JSON.parse(await run.waitForLine(/"event":"replay.start"/, 120_000)) as { slotFailover?: boolean };
    assert.is(start.slotFailover, setting === 'true' && v >= 170_000);
    await run.waitForLine(/"event":"replay.done"/, 120_000);
    assert.is(await run.stop('SIGTERM', 60_000), 0);
    assert.is(await slotFailover(walnut, slot), v >= 170_000 ? setting === 'true' : null);
    await dropSlot(walnut, slot);
  }
});

failover.run();
