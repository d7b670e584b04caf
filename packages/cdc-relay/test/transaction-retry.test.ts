/**
 * The relay's producer against a real broker where the coordinator answers
 * CONCURRENT_TRANSACTIONS: a new session fences a transactional id whose
 * previous owner left a transaction open. The coordinator aborts it and
 * answers the fence with CONCURRENT_TRANSACTIONS until the abort markers are
 * written; the producer retries through it (kafka-producer.ts counts those
 * retries by time, RELAY_KAFKA_SEND_TIMEOUT_MS, not ten at most). On a single
 * broker the abort took 6 to 7 retries (about 0.3 s) of the old limit of ten,
 * so this passes without the time budget too: it exercises the path on a real
 * coordinator; kafka-producer.test.ts is the one that fails without it.
 */
import { randomUUID } from 'node:crypto';
import { Kafka, logLevel } from 'kafkajs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { closeForcibly, createProducer } from '../src/kafka-producer.ts';

test('a fence over an open transaction rides out CONCURRENT_TRANSACTIONS', async () => {
  const brokers = (process.env.KAFKA_BROKERS ?? '').split(',');
  assert.ok(brokers[0], 'KAFKA_BROKERS is set (walnut-stack run)');
  const transactionalId = `retry-${randomUUID()}`;
  const topic = `test.transaction-retry.${randomUUID().slice(0, 8)}`;
  const kafka = new Kafka({ clientId: 'transaction-retry', brokers, logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic, numPartitions: 3 }], waitForLeaders: true });
  await admin.disconnect();

  // The previous owner: a transaction with records on every partition, left open.
  const previous = kafka.producer({ transactionalId, idempotent: true, maxInFlightRequests: 1 });
  await previous.connect();
  const open = await previous.transaction();
  await open.send({ topic, messages: [0, 1, 2].map((partition) => ({ partition, value: 'open' })) });

  const producer = createProducer(
    { brokers, clientId: 'transaction-retry', ssl: false },
    { transactionalId, requestTimeoutMs: 30_000, maxRequestsInFlight: 1 },
  );
  const retried: string[] = [];
  producer.on('client:performWithRetry:retry', (operationId: string) => retried.push(operationId));
  try {
    const transaction = await producer.beginTransaction();
    await transaction.cancel();
    console.log(`  transaction retry: the fence retried ${retried.join(', ') || 'nothing'}`);
    assert.ok(retried.includes('initProducerId'), 'the coordinator answered CONCURRENT_TRANSACTIONS at least once');
    // The old owner is fenced: its commit is refused.
    let refused = false;
    await open.commit().catch(() => {
      refused = true;
    });
    assert.ok(refused, "the previous owner's transaction cannot commit");
  } finally {
    await closeForcibly(producer);
    await previous.disconnect().catch(() => {});
  }
});

test.run();
