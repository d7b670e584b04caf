import { readCommittedRecords } from '@walnut/cdc-relay';
import type { TopicRecord } from './walnut-fixture.ts';

/**
 * Every committed data record of a topic, read partition by partition up to
 * each one's end as of the call (the relay's own reader). Exact where counting
 * offsets is not: a transactional producer's commit markers take offsets too,
 * and records of aborted transactions are in the log but not in the topic.
 */
export async function committedRecords(brokers: string[], topic: string): Promise<TopicRecord[]> {
  const records: TopicRecord[] = [];
  await readCommittedRecords({ brokers, clientId: 'walnut-stack', ssl: false }, topic, (record) => {
    const headers: Record<string, string> = {};
    for (const [k, v] of record.headers) if (k) headers[k.toString('utf8')] = v?.toString('utf8') ?? '';
    records.push({
      partition: record.partition,
      offset: String(record.offset),
      key: record.key?.toString('utf8') ?? null,
      value: record.value?.toString('utf8') ?? null,
      headers,
    });
  });
  return records;
}
