import { Admin, Consumer } from '@platformatic/kafka';
import { type Checkpoint, parseCheckpoint } from './checkpoint.ts';
import type { KafkaConnection } from './config.ts';
import { RelayError } from './errors.ts';
import { closeForcibly } from './kafka-producer.ts';

const READ_COMMITTED = 1;
/** Bit 5 of a record batch's attributes: a transaction marker, not data. */
const CONTROL_BATCH = 0x20;

function connection(kafka: KafkaConnection, role: string) {
  return {
    clientId: `${kafka.clientId}-${role}`,
    bootstrapBrokers: kafka.brokers,
    ...(kafka.ssl ? { tls: kafka.ssl === true ? {} : { ca: kafka.ssl.ca }, tlsServerName: true } : {}),
    ...(kafka.sasl ? { sasl: kafka.sasl } : {}),
    timeout: 10_000,
    retries: 5,
    retryDelay: 250,
  };
}

/**
 * Creates the checkpoint topic when it is missing: one partition, compacted
 * (only each relay's latest checkpoint matters), with short segments so the
 * compaction keeps what a start has to read small. Left alone when it exists.
 */
async function topicExists(kafka: KafkaConnection, topic: string): Promise<boolean> {
  const admin = new Admin(connection(kafka, 'checkpoint-admin'));
  try {
    return (await admin.listTopics()).includes(topic);
  } finally {
    await admin.close().catch(() => {});
  }
}

export async function ensureCheckpointTopic(kafka: KafkaConnection, topic: string): Promise<void> {
  const admin = new Admin(connection(kafka, 'checkpoint-admin'));
  try {
    if ((await admin.listTopics()).includes(topic)) return;
    await admin
      .createTopics({
        topics: [topic],
        partitions: 1,
        replicas: -1,
        configs: [
          { name: 'cleanup.policy', value: 'compact' },
          { name: 'segment.ms', value: String(10 * 60_000) },
          { name: 'min.cleanable.dirty.ratio', value: '0.1' },
        ],
      })
      .catch((error: unknown) => {
        // Another relay created it in the meantime.
        if (!(error as { findBy?: (k: string, v: unknown) => unknown }).findBy?.('apiId', 'TOPIC_ALREADY_EXISTS'))
          throw error;
      });
  } catch (cause) {
    throw new RelayError('KAFKA_SEND_FAILED', `cannot create the checkpoint topic ${topic}: ${String(cause)}`, {
      retryable: true,
      cause,
    });
  } finally {
    await admin.close().catch(() => {});
  }
}

/**
 * The last committed checkpoint under `key`, or null when this relay never
 * committed one (or the topic does not exist). Reads the whole partition with
 * read_committed up to its last stable offset: compaction keeps it short.
 */
export async function readCheckpoint(kafka: KafkaConnection, topic: string, key: Buffer): Promise<Checkpoint | null> {
  // Fetching by offset joins no group; the constructor requires a group id all the same.
  const consumer = new Consumer({
    ...connection(kafka, 'checkpoint-reader'),
    groupId: `${kafka.clientId}-checkpoint-reader`,
  });
  try {
    if (!(await topicExists(kafka, topic))) return null;
    const metadata = await consumer.metadata({ topics: [topic] });
    const topicMetadata = metadata.topics.get(topic);
    const partition = topicMetadata?.partitions[0];
    if (!topicMetadata || !partition) return null;
    const [earliest] = (await consumer.listOffsets({ topics: [topic], timestamp: -2n })).get(topic) ?? [];
    const [stable] = (await consumer.listOffsets({ topics: [topic], isolationLevel: READ_COMMITTED })).get(topic) ?? [];
    let offset = earliest ?? 0n;
    const end = stable ?? 0n;
    let last: Checkpoint | null = null;
    while (offset < end) {
      const response = await consumer.fetch({
        node: partition.leader,
        isolationLevel: READ_COMMITTED,
        maxWaitTime: 500,
        topics: [
          {
            topicId: topicMetadata.id,
            partitions: [
              {
                partition: 0,
                fetchOffset: offset,
                currentLeaderEpoch: -1,
                lastFetchedEpoch: -1,
                partitionMaxBytes: 4 << 20,
              },
            ],
          },
        ],
      });
      const batches = response.responses[0]?.partitions[0]?.records ?? [];
      if (batches.length === 0) break;
      for (const batch of batches) {
        offset = batch.firstOffset + BigInt(batch.lastOffsetDelta) + 1n;
        if (batch.attributes & CONTROL_BATCH) continue;
        for (const record of batch.records) {
          if (record.key?.equals(key)) last = parseCheckpoint(record.value) ?? last;
        }
      }
    }
    return last;
  } finally {
    await closeForcibly(consumer);
  }
}
