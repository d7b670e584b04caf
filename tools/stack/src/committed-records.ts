import { Consumer } from '@platformatic/kafka';
import type { TopicRecord } from './walnut-fixture.ts';

const READ_COMMITTED = 1;
/** Bit 5 of a record batch's attributes: transaction markers, not data. */
const CONTROL_BATCH = 0x20;

/**
 * Every committed data record of a topic, read partition by partition up to
 * each one's last stable offset as of the call. Exact where counting offsets
 * is not: a transactional producer's commit markers take offsets too, and
 * records of aborted transactions are in the log but not in the topic.
 */
export async function committedRecords(brokers: string[], topic: string): Promise<TopicRecord[]> {
  const consumer = new Consumer({
    clientId: 'walnut-stack-reader',
    groupId: `walnut-stack-reader-${process.pid}`,
    bootstrapBrokers: brokers,
  });
  try {
    const metadata = (await consumer.metadata({ topics: [topic] })).topics.get(topic);
    if (!metadata) return [];
    const earliest = (await consumer.listOffsets({ topics: [topic], timestamp: -2n })).get(topic) ?? [];
    const stable = (await consumer.listOffsets({ topics: [topic], isolationLevel: READ_COMMITTED })).get(topic) ?? [];
    const records: TopicRecord[] = [];
    for (const [partition, { leader }] of metadata.partitions.entries()) {
      let offset = earliest[partition] ?? 0n;
      const end = stable[partition] ?? 0n;
      while (offset < end) {
        const response = await consumer.fetch({
          node: leader,
          isolationLevel: READ_COMMITTED,
          maxWaitTime: 500,
          topics: [
            {
              topicId: metadata.id,
              partitions: [
                {
                  partition,
                  fetchOffset: offset,
                  currentLeaderEpoch: -1,
                  lastFetchedEpoch: -1,
                  partitionMaxBytes: 8 << 20,
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
            const at = batch.firstOffset + BigInt(record.offsetDelta);
            if (at >= end) continue;
            const headers: Record<string, string> = {};
            for (const [k, v] of record.headers) if (k) headers[k.toString('utf8')] = v?.toString('utf8') ?? '';
            records.push({
              partition,
              offset: String(at),
              key: record.key?.toString('utf8') ?? null,
              value: record.value?.toString('utf8') ?? null,
              headers,
            });
          }
        }
      }
    }
    return records;
  } finally {
    await new Promise<void>((resolve) => consumer.close(true, () => resolve()));
  }
}
