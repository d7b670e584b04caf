/**
 * `walnut-relay snapshot` never leaves a slot nothing knows about. A failure
 * after creating the slot and before relaying anything (here: a role that may
 * not read the outbox's rows) drops the slot again. A SIGKILL right after the
 * slot exists leaves a progress file naming it: `run` refuses to stream the
 * slot (which would never relay the older rows), a fresh `snapshot` says how
 * to get out, and `snapshot --resume` relays every row.
 */
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseLsn } from '@walnut/schema';
import {
  exitCode,
  insertOutboxRows,
  killAfterEach,
  readWholeTopic,
  slotLsn,
  startRelayCli,
  type WalnutFixture,
  type WalnutProcess,
  walnutSuite,
} from '@walnut/stack';
import pg from 'pg';
import * as assert from 'uvu/assert';
import { replayRecords } from './replay-checks.ts';

const snapshot = walnutSuite('snapshot slot', 'snapshot_slot');
const workDir = mkdtempSync(path.join(os.tmpdir(), 'walnut-snapshot-slot-'));

/** Every CLI run a test started, killed after it whatever it asserted. */
const killAfterTest = killAfterEach(snapshot);

function relayCli(args: string[], env: Record<string, string>): WalnutProcess {
  return killAfterTest(startRelayCli('relay-cli', args, env));
}

async function insertRows(walnut: WalnutFixture, aggregateType: string, rows: number): Promise<void> {
  await insertOutboxRows(walnut.pool, rows, { aggregateType, type: 'made', keyPrefix: 'k', keys: 50 });
}

/** Every row of `aggregateType` is on its topic with the snapshot's walnut-replay header. */
async function assertSnapshotted(walnut: WalnutFixture, aggregateType: string, replayId: string): Promise<void> {
  const topic = walnut.topic.replace(/\.kv$/, `.${aggregateType}`);
  const records = await readWholeTopic(walnut.kafka, topic);
  const ids = await walnut.pool.query<{ id: string }>('SELECT id::text FROM outbox WHERE aggregatetype = $1', [
    aggregateType,
  ]);
  const seen = replayRecords(records, replayId);
  const missing = ids.rows.filter((r) => !seen.has(r.id));
  assert.is(missing.length, 0, `${missing.length} of ${ids.rowCount} rows not relayed by ${replayId}`);
}

snapshot(
  'a role that may not read the outbox: CONFIG_INVALID, and the slot it created is dropped again',
  async ({ walnut }) => {
    await insertRows(walnut, 'priv', 500);
    const slot = `${walnut.slot}_priv`;
    const role = `${slot}_role`;
    const password = randomUUID();
    const publication = walnut.env.RELAY_PUBLICATION as string;
    // The owner publishes the outbox; the role may replicate, and read one column only: the
    // slot gets created, then the snapshot's first SELECT * is refused.
    const published = await walnut.pool.query('SELECT 1 FROM pg_publication WHERE pubname = $1', [publication]);
    if (!published.rowCount) {
      await walnut.pool.query(
        `CREATE PUBLICATION ${pg.escapeIdentifier(publication)} FOR TABLE public.outbox WITH (publish = 'insert')`,
      );
    }
    await walnut.pool.query(`
    CREATE ROLE ${pg.escapeIdentifier(role)} LOGIN REPLICATION PASSWORD ${pg.escapeLiteral(password)};
    GRANT SELECT (id) ON public.outbox TO ${pg.escapeIdentifier(role)};
  `);
    const url = new URL(walnut.env.DATABASE_URL as string);
    url.username = role;
    url.password = password;
    const env = { ...walnut.env, DATABASE_URL: url.toString(), RELAY_SLOT: slot };
    const file = path.join(workDir, 'priv.json');
    try {
      const refused = relayCli(['snapshot', '--progress-file', file, '--no-stream'], env);
      assert.is(await exitCode(refused), 1, refused.tail());
      assert.ok(
        refused.output.some((line) => line.includes('CONFIG_INVALID') && line.includes('dropped slot')),
        refused.tail(),
      );
      assert.is(await slotLsn(walnut.pool, slot), undefined, 'no slot left behind');
      assert.not.ok(existsSync(file), 'no progress file left behind');

      // Fixed: the same command again starts clean.
      await walnut.pool.query(`GRANT SELECT ON public.outbox TO ${pg.escapeIdentifier(role)}`);
      const again = relayCli(['snapshot', '--progress-file', file, '--no-stream'], env);
      assert.is(await exitCode(again), 0, again.tail());
      const state = JSON.parse(readFileSync(file, 'utf8')) as { replayId: string; finishedAt: string | null };
      assert.ok(state.finishedAt, 'finished');
      await assertSnapshotted(walnut, 'priv', state.replayId);
    } finally {
      await walnut.pool.query(
        'SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1',
        [slot],
      );
      await walnut.pool.query(`DROP OWNED BY ${pg.escapeIdentifier(role)}; DROP ROLE ${pg.escapeIdentifier(role)}`);
    }
  },
);

snapshot(
  'SIGKILL right after the slot exists: run refuses, snapshot names the way out, --resume relays every row',
  async ({ walnut }) => {
    await insertRows(walnut, 'orphan', 3_000);
    const file = path.join(workDir, 'orphan.json');
    const env = { ...walnut.relayEnv, RELAY_SNAPSHOT_PROGRESS_FILE: file };
    const killed = relayCli(['snapshot', '--page-size', '200'], { ...env, WALNUT_TEST_PAUSE_AFTER_SLOT_CREATED: '1' });
    await killed.waitForLine(/WALNUT_TEST_PAUSE_AFTER_SLOT_CREATED/, 60_000);
    assert.is(await killed.stop('SIGKILL'), null, 'killed');
    const consistentPoint = await slotLsn(walnut.pool, walnut.slot);
    assert.ok(consistentPoint !== undefined, 'the slot exists');

    // Streaming it now would skip every row above for ever.
    const run = relayCli(['run'], env);
    assert.is(await exitCode(run, 60_000), 1, run.tail());
    for (const needed of ['SNAPSHOT_INCOMPLETE', 'snapshot --resume', `slot drop --slot ${walnut.slot}`]) {
      assert.ok(
        run.output.some((line) => line.includes(needed)),
        `run names ${needed}: ${run.tail()}`,
      );
    }
    assert.is(await slotLsn(walnut.pool, walnut.slot), consistentPoint, 'nothing streamed from the slot');

    const fresh = relayCli(['snapshot'], env);
    assert.is(await exitCode(fresh), 2, fresh.tail());
    for (const needed of ['--resume', `slot drop --slot ${walnut.slot}`]) {
      assert.ok(
        fresh.output.some((line) => line.includes(needed)),
        `a fresh snapshot names ${needed}: ${fresh.tail()}`,
      );
    }

    const resumed = relayCli(['snapshot', '--resume', '--no-stream', '--page-size', '200'], env);
    assert.is(await exitCode(resumed), 0, resumed.tail());
    const state = JSON.parse(readFileSync(file, 'utf8')) as {
      replayId: string;
      consistentPoint: string;
      finishedAt: string | null;
    };
    assert.ok(state.finishedAt, 'finished');
    assert.is(parseLsn(state.consistentPoint), consistentPoint, "the slot's consistent point, read back from the slot");
    await assertSnapshotted(walnut, 'orphan', state.replayId);

    // Finished: run streams.
    const streams = relayCli(['run'], env);
    try {
      await streams.waitForLine(/"state":"streaming"/, 60_000);
    } finally {
      await streams.stop('SIGTERM');
    }
  },
);

snapshot.run();
