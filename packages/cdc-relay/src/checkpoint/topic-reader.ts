import { Consumer } from '@platformatic/kafka';
import type { KafkaConnection } from '../config.ts';
import { clientOptions, closeForcibly } from '../kafka-producer.ts';
import { CommittedBatches } from './committed-batches.ts';

const READ_UNCOMMITTED = 0;
const LIST_EARLIEST = -2n;

export interface CommittedRecord {
  partition: number;
  offset: bigint;
  key: Buffer | null;
  value: Buffer | null;
  headers: ReadonlyArray<readonly [Buffer | null, Buffer | null]>;
}

/**
 * Every committed record of a topic, partition by partition, up to each
 * partition's end as of the call, in offset order. Records of transactions
 * still open at the end are not committed (yet) and are left out; see
 * committed-batches.ts for why the decision is made here and not by the fetch.
 * No consumer group is joined.
 */
export async function readCommittedRecords(
  kafka: KafkaConnection,
  topic: string,
  onRecord: (record: CommittedRecord) => void,
): Promise<void> {
  // Read uncommitted, ListOffsets included: its end is then the high watermark. Read committed,
  // it would be the last stable offset, which an open transaction of any other producer of the
  // topic (another relay's checkpoint) holds back, hiding the commits behind it. Set on the
  // client, since the library's listOffsets refuses the option per call (its schema wants a string).
  const consumer = new Consumer({
    ...clientOptions(kafka, 'reader'),
    groupId: `${kafka.clientId}-reader`,
    isolationLevel: READ_UNCOMMITTED,
  });
  try {
    const metadata = (await consumer.metadata({ topics: [topic] })).topics.get(topic);
    if (!metadata) return;
    const earliest = (await consumer.listOffsets({ topics: [topic], timestamp: LIST_EARLIEST })).get(topic) ?? [];
    const ends = (await consumer.listOffsets({ topics: [topic] })).get(topic) ?? [];
    for (const [partition, { leader }] of metadata.partitions.entries()) {
      const committed = new CommittedBatches<FetchedBatch>();
      let offset = earliest[partition] ?? 0n;
      const end = ends[partition] ?? 0n;
      while (offset < end) {
        const response = await consumer.fetch({
          node: leader,
          isolationLevel: READ_UNCOMMITTED,
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
        const batches = (response.responses[0]?.partitions[0]?.records ?? []) as FetchedBatch[];
        if (batches.length === 0) break;
        for (const batch of batches) {
          offset = batch.firstOffset + BigInt(batch.lastOffsetDelta) + 1n;
          for (const settled of committed.push(batch)) {
            for (const record of settled.records) {
              const at = settled.firstOffset + BigInt(record.offsetDelta);
              if (at < end)
                onRecord({ partition, offset: at, key: record.key, value: record.value, headers: record.headers });
            }
          }
        }
      }
    }
  } finally {
    await closeForcibly(consumer);
  }
}

interface FetchedBatch {
  firstOffset: bigint;
  lastOffsetDelta: number;
  attributes: number;
  producerId: bigint;
  records: Array<{
    offsetDelta: number;
    key: Buffer | null;
    value: Buffer | null;
    headers: Array<[Buffer | null, Buffer | null]>;
  }>;
}
