/**
 * Regression: payloads of a few KB stalled the relay forever. A produce request
 * of 2,000 records put more than the broker's message.max.bytes (1 MiB) into
 * one partition's record batch, the broker refused it, and every retry sent
 * the same batch. Requests are now capped by bytes (RELAY_MAX_BATCH_BYTES),
 * counted with headers and framing, and a record no broker would take stops
 * the relay with RECORD_TOO_LARGE or goes to a dead-letter topic.
 */
import {
  exitCode,
  readTopic,
  startWalnutProcess,
  type WalnutFixture,
  walnutSuite,
} from '@walnut/stack';
import * as assert from 'uvu/assert';

const large = walnutSuite('large payloads', 'large_payload');

large('8 KB and 512 KB payloads all reach Kafka', async ({ walnut }) => {
  const relay = await walnut.startRelay();
  // 600 rows of 8 KB in one transaction: ~4.8 MB that would have left as one request.
  await walnut.pool.query(`
    INSERT INTO outbox (id, aggregatetype, aggregateid, type, payload)
    SELECT gen_random_uuid(), 'kv', 'k' || (g % 7), 'kv.set', jsonb_build_object('pad', repeat('x', 8192), 'g', g)
      FROM generate_series(1, 600) g`);
  await walnut.pool.query(`
    INSERT INTO outbox (id, aggregatetype, aggregateid, type, payload)
    SELECT gen_random_uuid(), 'kv', 'big', 'kv.set', jsonb_build_object('pad', repeat('y', 512 * 1024), 'g', g)
      FROM generate_series(1, 2) g`);
  const records = await readTopic(walnut.kafka, walnut.topic, (r) => r.length >= 602, 90_000);
  assert.is(new Set(records.map((r) => r.headers.id)).size, 602, relay.tail());
  assert.ok(records.every((r) => (r.value?.length ?? 0) > 8192));
  await relay.stop('SIGTERM');
});

/** A topic that refuses record batches over 100,000 bytes, like a broker with a small message.max.bytes. */
const SMALL_LIMIT = 100_000;
const smallLimitEnv = {
  RELAY_MAX_BATCH_BYTES: String(SMALL_LIMIT - 10_000),
  RELAY_MAX_RECORD_BYTES: String(SMALL_LIMIT),
};

async function createSmallLimitTopic(walnut: WalnutFixture, aggregateType: string): Promise<string> {
  const topic = walnut.topic.replace(/kv$/, aggregateType);
  const admin = walnut.kafka.admin();
  await admin.connect();
  try {
    await admin.createTopics({
      topics: [{ topic, numPartitions: 1, configEntries: [{ name: 'max.message.bytes', value: String(SMALL_LIMIT) }] }],
      waitForLeaders: true,
    });
  } finally {
    await admin.disconnect();
  }
  return topic;
}

// Regression: batches were sized by key + value only. 2,000 records of a few
// bytes each carry ~170 bytes of headers apiece, so a "90 KB" request was ~450 KB.
large('small records with headers are batched under the broker limit', async ({ walnut }) => {
  const topic = await createSmallLimitTopic(walnut, 'small');
  const relay = await walnut.startRelay(smallLimitEnv);
  await walnut.pool.query(`
    INSERT INTO outbox (id, aggregatetype, aggregateid, type, payload)
    SELECT gen_random_uuid(), 'small', 'one-key', 'kv.set', jsonb_build_object('g', g)
      FROM generate_series(1, 3000) g`);
  const records = await readTopic(walnut.kafka, topic, (r) => r.length >= 3000, 60_000);
  assert.is(new Set(records.map((r) => r.headers.id)).size, 3000, relay.tail());
  await relay.stop('SIGTERM');
});

large(
  'a record over the limit stops the relay with RECORD_TOO_LARGE, then a dead-letter topic takes it',
  async ({ walnut }) => {
    const topic = await createSmallLimitTopic(walnut, 'oversized');
    const id = (
      await walnut.pool.query<{ id: string }>(`
      INSERT INTO outbox (id, aggregatetype, aggregateid, type, payload)
      VALUES (gen_random_uuid(), 'oversized', 'k', 'kv.set', jsonb_build_object('pad', repeat('z', 150000)))
      RETURNING id::text`)
    ).rows[0]?.id as string;
    await walnut.pool.query(`
    INSERT INTO outbox (id, aggregatetype, aggregateid, type, payload)
    VALUES (gen_random_uuid(), 'oversized', 'k', 'kv.set', '{"after": true}')`);

    const relay = startWalnutProcess('relay', { ...walnut.env, ...smallLimitEnv });
    assert.is(await exitCode(relay, 60_000), 1, relay.tail());
    const fatal = relay.output.find((line) => line.includes('"level":60')) ?? '';
    assert.match(fatal, '"code":"RECORD_TOO_LARGE"');
    assert.match(fatal, `outbox row ${id}`);
    assert.match(fatal, `limit of ${SMALL_LIMIT}`);

    const deadLetters = `${topic}.dlq`;
    const resumed = await walnut.startRelay({ ...smallLimitEnv, RELAY_DEAD_LETTER_TOPIC: deadLetters });
    const after = await readTopic(walnut.kafka, topic, (r) => r.length >= 1, 30_000);
    assert.equal(
      after.map((r) => r.value),
      ['{"after": true}'],
    );
    const standIns = await readTopic(walnut.kafka, deadLetters, (r) => r.length >= 1, 30_000);
    assert.is(standIns.length, 1);
    assert.is(standIns[0]?.headers.id, id);
    assert.is(standIns[0]?.headers['walnut-dlq-reason'], 'RECORD_TOO_LARGE');
    assert.is(standIns[0]?.headers['walnut-dlq-topic'], topic);
    assert.is(standIns[0]?.value, null);
    await resumed.stop('SIGTERM');
  },
);

large.run();
