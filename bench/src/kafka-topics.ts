import type { Kafka } from 'kafkajs';

/** The harness broker's num.partitions: every benchmark topic gets the same, created up front. */
export const PARTITIONS = 3;

export async function createTopic(kafka: Kafka, topic: string): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    await admin.createTopics({
      topics: [{ topic, numPartitions: PARTITIONS, replicationFactor: 1 }],
      waitForLeaders: true,
    });
  } finally {
    await admin.disconnect();
  }
}

/** Records in the topic: the sum of its partitions' high watermarks (what Kafka has acked). */
export async function topicRecords(admin: ReturnType<Kafka['admin']>, topic: string): Promise<number> {
  const offsets = await admin.fetchTopicOffsets(topic);
  return offsets.reduce((sum, p) => sum + Number(p.high), 0);
}
