import {
  compatibilityPartitioner,
  createPromisifiedCallback,
  defaultPartitioner,
  kCallbackPromise,
  kPerformWithRetry,
  ProtocolError,
} from '@platformatic/kafka';
import { Partitioners } from 'kafkajs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { javaPartitioner, murmur2 } from './java-partitioner.ts';
import { closeForcibly, countedAttempt, createProducer } from './kafka-producer.ts';

// Switching producers must not move a key to another partition: per-key order
// across the switch depends on it. kafkajs's default is the Java client's.
test('keys keep the partition kafkajs (and the Java client) gave them', () => {
  const kafkajs = Partitioners.DefaultPartitioner();
  for (const partitions of [3, 6, 12]) {
    const partitionMetadata = Array.from({ length: partitions }, (_, i) => ({
      partitionId: i,
      leader: 1,
      partitionErrorCode: 0,
      replicas: [1],
      isr: [1],
    }));
    let moved = 0;
    for (let i = 0; i < 2_000; i++) {
      // Every tail length (0-3 bytes past the last whole word), and bytes of every value.
      const key =
        i % 2 === 0
          ? Buffer.from(`key-${i}`)
          : Buffer.from(Array.from({ length: i % 41 }, (_, b) => (i * 31 + b * 97) & 0xff));
      const expected = kafkajs({ topic: 't', partitionMetadata, message: { key, value: null } });
      const actual = javaPartitioner({ topic: 't' }, key) % partitions;
      assert.is(actual, expected, `key ${key.toString('hex')} over ${partitions} partitions`);
      assert.is(compatibilityPartitioner({ topic: 't', value: Buffer.alloc(0) }, key) % partitions, expected);
      const libraryDefault = defaultPartitioner({ topic: 't', value: Buffer.alloc(0) }, key) % partitions;
      if (libraryDefault !== expected) moved++;
    }
    // The library's own default would have moved many keys: why the relay names its partitioner.
    assert.ok(moved > 200, `the library default moves ${moved} of 2000 keys over ${partitions} partitions`);
  }
});

// The Java client's own test vectors (UtilsTest.testMurmur2).
test("murmur2 gives the Java client's hashes", () => {
  const cases: Array<[string, number]> = [
    ['21', -973932308],
    ['foobar', -790332482],
    ['a-little-bit-long-string', -985981536],
    ['a-little-bit-longer-string', -1486304829],
    ['lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8', -58897971],
    ['abc', 479470107],
  ];
  for (const [key, hash] of cases) assert.is(murmur2(Buffer.from(key)), hash, key);
  assert.is(javaPartitioner({}, undefined), 0, 'no key: partition 0, as the library');
});

const concurrent = () => new ProtocolError('CONCURRENT_TRANSACTIONS');

test('CONCURRENT_TRANSACTIONS retries stop counting within the budget, and count again past it', () => {
  assert.is(countedAttempt(3, concurrent(), 0, 30_000), 3, 'early retries count, for their short delays');
  assert.is(countedAttempt(9, concurrent(), 29_999, 30_000), 6, 'held below the retry limit');
  assert.is(countedAttempt(9, concurrent(), 30_000, 30_000), 9, 'past the budget');
  assert.is(countedAttempt(9, new ProtocolError('NOT_LEADER_OR_FOLLOWER'), 10, 30_000), 9, 'other errors count');
});

// Issue item 5: the coordinator answers CONCURRENT_TRANSACTIONS for as long as the last
// transaction's markers take, which in a leader move is seconds; ten retries were about 0.6 s.
// The library's own retry loop, driven by an operation that meets it for 1.5 s (no broker).
test('the producer retries CONCURRENT_TRANSACTIONS for its time budget, not ten times', async () => {
  const producer = createProducer(
    { brokers: ['127.0.0.1:1'], clientId: 'retry-test', ssl: false },
    { transactionalId: 'retry-test', requestTimeoutMs: 20_000, maxRequestsInFlight: 1 },
  );
  try {
    const until = performance.now() + 1_500;
    let tries = 0;
    const callback = createPromisifiedCallback<string>();
    producer[kPerformWithRetry]<string>(
      'addPartitionsToTransaction',
      (done) => {
        tries++;
        if (performance.now() < until) done(concurrent());
        else done(null, 'added');
      },
      callback,
    );
    assert.is(await callback[kCallbackPromise], 'added');
    assert.ok(tries > 11, `${tries} tries`);
  } finally {
    await closeForcibly(producer);
  }
});

test.run();
