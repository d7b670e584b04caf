import { Admin } from '@platformatic/kafka';
import type { KafkaConnection } from '../config.ts';
import { RelayError } from '../errors.ts';
import { clientOptions } from '../kafka-producer.ts';
import { type Checkpoint, parseCheckpoint } from './checkpoint.ts';
import { readCommittedRecords } from './topic-reader.ts';

function admin(kafka: KafkaConnection): Admin {
  return new Admin({ ...clientOptions(kafka, 'admin'), timeout: 10_000, retries: 5, retryDelay: 250 });
}

async function topicExists(kafka: KafkaConnection, topic: string): Promise<boolean> {
  const client = admin(kafka);
  try {
    return (await client.listTopics()).includes(topic);
  } finally {
    await client.close().catch(() => {});
  }
}

/**
 * Creates the checkpoint topic when it is missing: one partition, compacted
 * (only each relay's latest checkpoint matters), with short segments so the
 * compaction keeps what a start has to read small. Left alone when it exists.
 */
export async function ensureCheckpointTopic(kafka: KafkaConnection, topic: string): Promise<void> {
  const client = admin(kafka);
  try {
    if ((await client.listTopics()).includes(topic)) return;
    await client
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
    await client.close().catch(() => {});
  }
}

/**
 * The last committed checkpoint under `key`, or null when this relay never
 * committed one (or the topic does not exist). Reads the whole (compacted,
 * one-partition) topic: a checkpoint of an aborted or still open transaction
 * is not one.
 */
export async function readCheckpoint(kafka: KafkaConnection, topic: string, key: Buffer): Promise<Checkpoint | null> {
  if (!(await topicExists(kafka, topic))) return null;
  let last: Checkpoint | null = null;
  await readCommittedRecords(kafka, topic, (record) => {
    if (record.key?.equals(key)) last = parseCheckpoint(record.value) ?? last;
  });
  return last;
}
