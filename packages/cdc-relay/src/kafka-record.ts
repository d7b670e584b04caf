import type { Lsn } from '@walnut/schema';

/**
 * A record as the Kafka producer takes it (Buffers, headers as a Map of
 * Buffers), plus what the relay needs to size it before sending and to name
 * it in an error.
 */
export interface KafkaRecord {
  topic: string;
  key: Buffer | undefined;
  value: Buffer | undefined;
  headers: Map<Buffer, Buffer>;
  /**
   * Upper bound of the record's encoded size inside a v2 record batch: key,
   * value and headers plus their varint framing. Produce requests are sized by
   * it, so a batch of small records with many headers stays under the broker's
   * message.max.bytes (sizing by payload alone did not).
   */
  sizeBytes: number;
  /** What the record came from (outbox row id, or message prefix), for errors. */
  source: string;
  /** Where it sits in the WAL: its transaction's commit LSN and its index in it. */
  position: RecordPosition;
  /**
   * Why the row cannot become this record (an empty topic column, a bytea
   * payload in an unknown format); unset when it mapped. The sink dead-letters
   * it or stops: a row is never silently dropped.
   */
  unmappable?: string;
}

export interface RecordPosition {
  commitLsn: Lsn;
  seq: number;
  /** Exactly-once: the transaction's xid and commit time, kept in the checkpoint (checkpoint.ts). */
  tx?: { xid: number; commitTimeMicros: bigint };
}

/** Batch header of a v2 record batch (KIP-98): offsets, CRC, producer id/epoch, sequence, count. */
export const RECORD_BATCH_OVERHEAD_BYTES = 61;

/** length, attributes, timestamp delta, offset delta, key and value lengths, header count: all varints. */
export const RECORD_FRAMING_BYTES = 5 + 1 + 10 + 5 + 5 + 5 + 5;
/** A header's name and value lengths (varints). */
export const HEADER_FRAMING_BYTES = 10;

const headerNames = new Map<string, Buffer>();

/** Header names are a handful of configured strings: encode each once. */
export function headerName(name: string): Buffer {
  let encoded = headerNames.get(name);
  if (!encoded) {
    encoded = Buffer.from(name, 'utf8');
    headerNames.set(name, encoded);
  }
  return encoded;
}

/** KafkaRecord.sizeBytes of a record with this key, value and headers. */
export function recordSizeBytes(
  key: Buffer | undefined,
  value: Buffer | undefined,
  headers: Iterable<[Buffer, Buffer]>,
): number {
  let sizeBytes = RECORD_FRAMING_BYTES + (key?.length ?? 0) + (value?.length ?? 0);
  for (const [name, headerValue] of headers) sizeBytes += HEADER_FRAMING_BYTES + name.length + headerValue.length;
  return sizeBytes;
}

export function kafkaRecord(
  topic: string,
  key: Buffer | undefined,
  value: Buffer | undefined,
  headers: Map<Buffer, Buffer>,
  source: string,
  position: RecordPosition,
  unmappable?: string,
): KafkaRecord {
  const sizeBytes = recordSizeBytes(key, value, headers);
  const record: KafkaRecord = { topic, key, value, headers, sizeBytes, source, position };
  if (unmappable !== undefined) record.unmappable = unmappable;
  return record;
}

/** Kafka's rule for topic names (org.apache.kafka.common.internals.Topic.validate). */
const LEGAL_TOPIC = /^[A-Za-z0-9._-]{1,249}$/;
let lastLegalTopic: string | undefined;

/**
 * Why Kafka would refuse `topic` as a name, or undefined when it is legal. A
 * rendered topic is checked before sending: the broker answers an illegal one
 * with INVALID_TOPIC_EXCEPTION for the whole batch, on every retry.
 */
export function topicProblem(topic: string): string | undefined {
  // Most records go to the topic the previous one went to: checked once.
  if (topic === lastLegalTopic) return undefined;
  if (topic === '.' || topic === '..')
    return `topic "${topic}" is not a legal Kafka topic name ("." and ".." are reserved)`;
  if (LEGAL_TOPIC.test(topic)) {
    lastLegalTopic = topic;
    return undefined;
  }
  const why = topic.length > 249 ? `${topic.length} characters, over 249` : 'Kafka allows only A-Z a-z 0-9 . _ -';
  return `topic "${topic}" is not a legal Kafka topic name (${why})`;
}

/** A header's value as text, for tests and error messages. */
export function headerText(record: KafkaRecord, name: string): string | undefined {
  for (const [k, v] of record.headers) if (k.toString('utf8') === name) return v.toString('utf8');
  return undefined;
}

/** All headers as text, for tests. */
export function headersAsText(record: KafkaRecord): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of record.headers) out[k.toString('utf8')] = v.toString('utf8');
  return out;
}
