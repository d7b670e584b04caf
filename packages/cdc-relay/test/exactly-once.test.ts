/**
 * RELAY_DELIVERY=exactly-once on the real stack: SIGKILLs mid-stream, some of
 * them inside a Postgres transaction larger than one Kafka transaction, and a
 * read_committed reader finds every row once: none missing, none twice, each
 * key's rows in commit order; also while another producer holds a transaction
 * open in the shared checkpoint topic.
 */
import { randomUUID } from 'node:crypto';
import { formatLsn, parseLsn } from '@walnut/schema';
import { countDelivery, pause, readTopic, type WalnutProcess, waitFor, walnutSuite } from '@walnut/stack';
import * as assert from 'uvu/assert';

const exactlyOnce = walnutSuite('exactly-once', 'exactly_once');

// Small Kafka transactions, so a 2,000-row Postgres transaction spans forty of them.
const RELAY_ENV = { RELAY_DELIVERY: 'exactly-once', RELAY_MAX_BATCH_RECORDS: '50' };
const CHECKPOINT_TOPIC = 'walnut.relay.checkpoints';

exactlyOnce('SIGKILLs, inside large transactions too, leave no duplicate and no gap', async ({ walnut }) => {
  const ids: string[] = [];
  let committed = 0;
  let relay: WalnutProcess = await walnut.startRelay(RELAY_ENV);
  const skippedLines: string[] = [];
  const writer = (async () => {
    for (let t = 0; t < 60; t++) {
      // Every tenth transaction is large: a kill is likely to land inside it.
      const rows = t % 10 === 5 ? 2_000 : 20;
      const batch = Array.from({ length: rows }, () => randomUUID());
      await walnut.pool.query(
        `INSERT INTO outbox (id, aggregatetype, aggregateid, type, payload)
         SELECT id, 'kv', 'k' || (n % 41), 'kv.set', jsonb_build_object('t', $2::int, 'n', n)
           FROM unnest($1::uuid[]) WITH ORDINALITY AS u(id, n)`,
        [batch, t],
      );
      ids.push(...batch);
      committed++;
    }
  })();

  // Another relay's transaction left open in the shared checkpoint topic (a relay killed
  // mid-transaction): it must not hide this relay's later checkpoints from its restarts.
  const foreign = walnut.kafka.producer({
    transactionalId: `foreign-${randomUUID()}`,
    maxInFlightRequests: 1,
    idempotent: true,
  });
  await foreign.connect();
  const open = await foreign.transaction();
  await open.send({ topic: CHECKPOINT_TOPIC, messages: [{ key: 'another relay', value: '{}' }] });

  for (let kill = 1; kill <= 5; kill++) {
    await waitFor(`transaction ${kill * 10 + 3} committed`, async () => committed >= kill * 10 + 3, {
      timeoutMs: 120_000,
    });
    // Let it stream for a moment, then kill it wherever it is.
    await pause(150 + kill * 40);
    assert.is(await relay.stop('SIGKILL'), null);
    relay = await walnut.startRelay(RELAY_ENV);
    skippedLines.push(...relay.output.filter((line) => line.includes('exactly-once: skipping')));
  }
  await writer;
  await open.abort();
  await foreign.disconnect();

  const expected = new Set(ids);
  const records = await readTopic(walnut.kafka, walnut.topic, (seen) => seen.length >= expected.size, 120_000);
  // A little longer: a duplicate would arrive after the last new record.
  await pause(2_000);
  const all = await readTopic(walnut.kafka, walnut.topic, (seen) => seen.length >= records.length, 60_000);
  const delivery = countDelivery(
    expected,
    all.map((r) => r.headers.id),
  );
  const missing = delivery.missing.length;
  const { duplicates } = delivery;
  console.log(
    `  exactly-once: ${expected.size} rows, ${all.length} records, ${missing} missing, ${duplicates} duplicates; ` +
      `${skippedLines.length} restarts skipped what Kafka held`,
  );
  assert.is(missing, 0, 'missing rows');
  assert.is(duplicates, 0, 'duplicates');
  // Per key (per partition), records are in commit order: LSN, then seq.
  const last = new Map<string, [bigint, number]>();
  for (const r of all) {
    const lsnText = r.headers['walnut-commit-lsn'] as string;
    assert.is(lsnText, formatLsn(parseLsn(lsnText)), "the header is in Postgres's own LSN form, not zero-padded");
    const at: [bigint, number] = [parseLsn(lsnText), Number(r.headers['walnut-seq'])];
    const before = last.get(r.key as string);
    if (before) assert.ok(before[0] < at[0] || (before[0] === at[0] && before[1] < at[1]), `order of key ${r.key}`);
    last.set(r.key as string, at);
  }
  await relay.stop('SIGTERM');
});

exactlyOnce.run();
