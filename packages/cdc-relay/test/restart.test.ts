/**
 * The relay stopped mid-stream, by SIGKILL and by SIGTERM, resumes from its
 * confirmed LSN: every committed outbox row reaches Kafka, none is lost.
 */
import { randomUUID } from 'node:crypto';
import { formatLsn } from '@walnut/schema';
import { confirmedLsn, countDelivery, readDistinctIds, waitConfirmed, waitFor, walnutSuite } from '@walnut/stack';
import * as assert from 'uvu/assert';

const restart = walnutSuite('relay restart', 'restart');

restart('SIGKILL and SIGTERM mid-stream lose nothing', async ({ walnut }) => {
  const transactions = 400;
  const rowsPerTx = 10;
  const ids: string[] = [];
  let committed = 0;
  // The slot must exist before the app writes: rows committed before it are not decoded.
  let relay = await walnut.startRelay();
  const createdAt = await confirmedLsn(walnut.pool, walnut.slot);
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
  await waitConfirmed(walnut.pool, walnut.slot, createdAt + 1n, { what: 'relay confirmed some progress' });
  assert.is(await relay.stop('SIGKILL'), null, 'killed by the signal');

  await waitFor('half written', async () => committed >= transactions / 2);
  const beforeRestart = await confirmedLsn(walnut.pool, walnut.slot);
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
  const records = await readDistinctIds(walnut.kafka, walnut.topic, expected.size, 90_000);
  const { missing, duplicates } = countDelivery(
    expected,
    records.map((r) => r.headers.id),
  );
  if (missing.length > 0) {
    console.log(`slot at ${formatLsn(await confirmedLsn(walnut.pool, walnut.slot))}; relay output:\n${relay.tail(20)}`);
  }
  assert.is(missing.length, 0, `missing ${missing.length} of ${expected.size} events`);
  console.log(`  relay restart: ${expected.size} events, ${records.length} records, ${duplicates} duplicates`);
  assert.ok(duplicates < expected.size, 'restarts resume from the confirmed LSN, not from the start');
  assert.ok(beforeRestart !== 0n);
  await waitConfirmed(walnut.pool, walnut.slot, beforeRestart + 1n, { what: 'slot confirmed past the last restart' });
  await relay.stop('SIGTERM');
});

restart.run();
