import { NetworkError, Producer } from '@platformatic/kafka';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { javaPartitioner } from './java-partitioner.ts';
import { allocWire, WIRE_HEAD_ROOM, WireRecord, writeBytesField, writeVarInt } from './wire-record.ts';

/**
 * The pnpm patch of @platformatic/kafka. A send whose metadata lacks its topic or
 * partition (seen while a broker of a cluster was stopped) fails with a retriable
 * NetworkError. Unpatched, it threw a TypeError outside any callback, and the relay
 * died. No broker here: the producer's metadata lookup is replaced by one that
 * answers what the cluster answered then.
 */
type Metadata = { topics: Map<string, { partitionsCount: number; partitions: Array<{ leader: number }> }> };

function producerAnswering(metadata: Metadata, partitioner?: typeof javaPartitioner) {
  const producer = new Producer({
    clientId: 'metadata-test',
    bootstrapBrokers: ['127.0.0.1:1'],
    retries: 0,
    ...(partitioner ? { partitioner } : {}),
  });
  let lookup: symbol | undefined;
  for (let proto = Object.getPrototypeOf(producer); proto && !lookup; proto = Object.getPrototypeOf(proto)) {
    lookup = Object.getOwnPropertySymbols(proto).find((s) => s.description === 'plt.kafka.base.metadata');
  }
  if (!lookup) throw new Error("the producer's metadata lookup is not where the patch expects it");
  let cleared = 0;
  Object.assign(producer, {
    [lookup]: (_options: unknown, callback: (error: Error | null, metadata: Metadata) => void) =>
      callback(null, metadata),
    clearMetadata: () => {
      cleared++;
    },
  });
  return { producer, cleared: () => cleared };
}

const send = (producer: Producer, topic: string) =>
  producer.send({ messages: [{ topic, key: Buffer.from('k'), value: Buffer.from('v'), partition: 5 }] });

test('a send whose topic is missing from the metadata fails with a NetworkError, and the metadata is dropped', async () => {
  const { producer, cleared } = producerAnswering({ topics: new Map() });
  const error = await send(producer, 'orders').then(
    () => null,
    (e: unknown) => e,
  );
  assert.instance(error, NetworkError);
  assert.match((error as Error).message, 'No metadata for topic orders');
  assert.is(cleared(), 1);
  await producer.close(true);
});

test('a send whose partition is missing from the metadata fails the same way', async () => {
  const { producer, cleared } = producerAnswering({
    topics: new Map([['orders', { partitionsCount: 3, partitions: [{ leader: 1 }, { leader: 1 }] }]]),
  });
  const error = await send(producer, 'orders').then(
    () => null,
    (e: unknown) => e,
  );
  assert.instance(error, NetworkError);
  assert.match((error as Error).message, 'No metadata for topic orders partition 2');
  assert.is(cleared(), 1);
  await producer.close(true);
});

test('a wire record is sent as itself: the partitioner picks its partition from its key, on the record', async () => {
  const { producer } = producerAnswering({ topics: new Map() }, javaPartitioner);
  const key = Buffer.from('order-17');
  const { wire, slab } = allocWire(WIRE_HEAD_ROOM + 1 + key.length + 1 + 1);
  let at = writeBytesField(wire, WIRE_HEAD_ROOM, key);
  at = writeBytesField(wire, at, null);
  writeVarInt(wire, at, 0);
  const record = new WireRecord('orders', wire, 32, { commitLsn: 0x10n, seq: 0 }, undefined, slab);
  assert.is(record.partition, undefined);
  await producer.send({ messages: [record as never] }).catch(() => {});
  // The send failed on the metadata (no topic), after the partition was picked and before it was
  // reduced modulo the partition count.
  assert.is(record.partition, javaPartitioner({ topic: 'orders' }, key));
  await producer.close(true);
});

test.run();
