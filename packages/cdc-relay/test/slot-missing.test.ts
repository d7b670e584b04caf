/**
 * A relay never silently starts from "now" after it has relayed before. On a
 * first start it creates its slot; once it has committed a checkpoint to Kafka,
 * a missing slot (restore, failover, dropped by hand) is fatal SLOT_MISSING,
 * naming the last LSN it relayed and the command that accepts the gap.
 */
import { exitCode, readTopic, runRelayCli, startWalnutProcess, type WalnutFixture, walnutSuite } from '@walnut/stack';
import * as assert from 'uvu/assert';

const missing = walnutSuite('missing slot', 'slot_missing');

async function insert(walnut: WalnutFixture, n: number): Promise<void> {
  await walnut.pool.query(
    `INSERT INTO outbox (id, aggregatetype, aggregateid, type, payload)
     SELECT gen_random_uuid(), 'kv', 'k' || g, 'kv.set', '{}' FROM generate_series(1, $1::int) g`,
    [n],
  );
}

missing('first start creates the slot; after a drop the relay exits with SLOT_MISSING', async ({ walnut }) => {
  const first = await walnut.startRelay();
  assert.ok(
    first.output.some((line) => line.includes('created replication slot (first start)')),
    first.tail(),
  );
  await insert(walnut, 5);
  const records = await readTopic(walnut.kafka, walnut.topic, (r) => r.length >= 5, 30_000);
  const lastLsn = records.map((r) => r.headers['walnut-commit-lsn']).at(-1) as string;
  assert.is(await first.stop('SIGTERM'), 0);

  await walnut.pool.query('SELECT pg_drop_replication_slot($1)', [walnut.slot]);
  await insert(walnut, 3); // committed while no slot exists: the gap

  const second = startWalnutProcess('relay', walnut.env);
  assert.is(await exitCode(second, 60_000), 1, second.tail());
  const fatal = second.output.find((line) => line.includes('"level":60')) ?? '';
  assert.match(fatal, '"code":"SLOT_MISSING"');
  assert.match(fatal, `LSN ${lastLsn}`);
  assert.match(fatal, `walnut-relay slot create --slot ${walnut.slot}`);
  const slots = await walnut.pool.query('SELECT 1 FROM pg_replication_slots WHERE slot_name = $1', [walnut.slot]);
  assert.is(slots.rowCount, 0, 'the relay did not recreate the slot');

  // The named command is the explicit way on; the relay then streams from the new slot.
  const created = await runRelayCli(['slot', 'create', '--slot', walnut.slot], walnut.env);
  assert.is(created.code, 0, created.stderr);
  const third = await walnut.startRelay();
  await insert(walnut, 2);
  const after = await readTopic(walnut.kafka, walnut.topic, (r) => r.length >= 7, 30_000);
  assert.is(after.length, 7, 'the 3 rows of the gap are not relayed; the 2 after the new slot are');
  await third.stop('SIGTERM');
});

missing.run();
