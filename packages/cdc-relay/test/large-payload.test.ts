/**
 * Regression: payloads of a few KB stalled the relay forever. A produce request
 * of 2,000 records put more than the broker's message.max.bytes (1 MiB) into
 * one partition's record batch, the broker refused it, and every retry sent
 * the same batch. Requests are now capped by bytes (RELAY_MAX_BATCH_BYTES).
 */
import { readTopic, type WalnutFixture, walnutFixture } from '@walnut/stack';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';

const large = suite<{ walnut: WalnutFixture }>('large payloads');

large.before(async (ctx) => {
  ctx.walnut = await walnutFixture('large_payload');
});

large.after(async ({ walnut }) => {
  await walnut.close();
});

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

large.run();
