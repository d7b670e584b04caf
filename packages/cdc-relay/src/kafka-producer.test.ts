import { compatibilityPartitioner, defaultPartitioner } from '@platformatic/kafka';
import { Partitioners } from 'kafkajs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';

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
      const key = Buffer.from(`key-${i}`);
      const expected = kafkajs({ topic: 't', partitionMetadata, message: { key, value: null } });
      const actual = compatibilityPartitioner({ topic: 't', value: Buffer.alloc(0) }, key) % partitions;
      assert.is(actual, expected, `key-${i} over ${partitions} partitions`);
      const libraryDefault = defaultPartitioner({ topic: 't', value: Buffer.alloc(0) }, key) % partitions;
      if (libraryDefault !== expected) moved++;
    }
    // The library's own default would have moved many keys: why the relay names its partitioner.
    assert.ok(moved > 200, `the library default moves ${moved} of 2000 keys over ${partitions} partitions`);
  }
});

test.run();
