import type { Kafka } from 'kafkajs';
import { waitFor } from './wait-for.ts';
import { readTopic, readWholeTopic, type TopicRecord } from './walnut-fixture.ts';

/** The outbox row id the relay puts in every record's `id` header. */
const outboxId = (record: TopicRecord): string | undefined => record.headers.id;

/**
 * Reads a topic from the beginning until `count` distinct ids are among its
 * records, or until the deadline, returning what it read either way: the
 * caller's own count then says what is missing. Ids are counted as batches
 * arrive, so each check does not rescan everything read so far.
 */
export async function readDistinctIds(
  kafka: Kafka,
  topic: string,
  count: number,
  timeoutMs = 60_000,
  idOf: (record: TopicRecord) => string | undefined = outboxId,
): Promise<TopicRecord[]> {
  const seen = new Set<string | undefined>();
  let counted = 0;
  return readTopic(
    kafka,
    topic,
    (read) => {
      for (; counted < read.length; counted++) seen.add(idOf(read[counted] as TopicRecord));
      return seen.size >= count;
    },
    timeoutMs,
  );
}

/**
 * Reads a topic that is still being written, whole (readWholeTopic), again and
 * again until `enough` holds of one read; returns that read. Fails with a
 * timeout otherwise.
 */
export async function waitWholeTopic(
  what: string,
  kafka: Kafka,
  topic: string,
  enough: (records: readonly TopicRecord[]) => boolean,
  opts: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<TopicRecord[]> {
  return waitFor(
    what,
    async () => {
      const records = await readWholeTopic(kafka, topic);
      return enough(records) ? records : undefined;
    },
    opts,
  );
}
