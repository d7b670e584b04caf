/**
 * The relay stopped mid-stream, by SIGKILL and by SIGTERM, resumes from its
 * confirmed LSN: every committed outbox row reaches Kafka, none is lost.
 */
import { randomUUID } from 'node:crypto';
import { readTopic, type WalnutFixture, waitFor, walnutSuite } from '@walnut/stack';
import * as assert from 'uvu/assert';

const restart = walnutSuite('relay restart', 'restart');

async function confirmedLsn(walnut: WalnutFixture): Promise<string> {
  const r = await walnut.pool.query(
    'SELECT confirmed_flush_lsn::text AS lsn FROM pg_replication_slots WHERE slot_name = $1',
    [walnut.slot],
  );
  return r.rows[0].lsn;
}

restart('SIGKILL and SIGTERM mid-stream lose nothing', async ({ walnut }) => {
  const transactions = 400;
  const rowsPerTx = 10;
  const ids: string[] = [];
  let committed = 0;
  // The slot must exist before the app writes: rows committed before it are not decoded.
  let relay = await walnut.startRelay();
  const createdAt = await confirmedLsn(walnut);
  // Plain SQL inserts, as any app would write its outbox.
  const writer = (async () => {
    for (let t = 0; t < transactions; t++) {
      const client = await walnut.pool.connect();
      try {
        await client.query('BEGIN');
        for (let r = 0; r < rowsPerTx; r++) {
          const id = randomUUID();
          await client.query(
            `INSERT INTO outbox (id, aggregatetype, aggregateid, type, payload) VALUES ($1, 'kv', $2, 'kv.set', $3)`,
            [id, `k${(t * rowsPerTx + r) % 37}`, JSON.stringify({ t, r })],
          );
          ids.push(id);
        }
        await client.query('COMMIT');
        committed++;
      } finally {
        client.release();
      }
    }
  })();

  await waitFor('a quarter written', async () => committed >= transactions / 4);
  await waitFor('relay confirmed some progress', async () => (await confirmedLsn(walnut)) !== createdAt);
  assert.is(await relay.stop('SIGKILL'), null, 'killed by the signal');

  await waitFor('half written', async () => committed >= transactions / 2);
  const beforeRestart = await confirmedLsn(walnut);
  relay = await walnut.startRelay();
  await waitFor('three quarters written', async () => committed >= (transactions * 3) / 4);
  assert.is(await relay.stop('SIGTERM'), 0, 'graceful stop exits 0');
  assert.ok(
    relay.output.some((line) => line.includes('"state":"draining"')),
    'drained before exit',
  );

  relay = await walnut.startRelay();
  await writer;
  const expected = new Set(ids);
  const records = await readTopic(
    walnut.kafka,
    walnut.topic,
    (seen) => new Set(seen.map((r) => r.headers.id)).size >= expected.size,
    90_000,
  );
  const seen = new Set(records.map((r) => r.headers.id));
  const missing = [...expected].filter((id) => !seen.has(id));
  if (missing.length > 0) {
    console.log(`slot at ${await confirmedLsn(walnut)}; relay output:\n${relay.tail(20)}`);
  }
  assert.is(missing.length, 0, `missing ${missing.length} of ${expected.size} events`);
  const duplicates = records.length - seen.size;
  console.log(`  relay restart: ${expected.size} events, ${records.length} records, ${duplicates} duplicates`);
  assert.ok(duplicates < expected.size, 'restarts resume from the confirmed LSN, not from the start');
  assert.ok(beforeRestart !== '0/0');
  await waitFor('slot confirmed past the last restart', async () => (await confirmedLsn(walnut)) !== beforeRestart);
  await relay.stop('SIGTERM');
});

restart.run();
