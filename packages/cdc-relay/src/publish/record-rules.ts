import { formatLsn } from '@walnut/schema';
import { RelayError } from '../errors.ts';
import {
  headerName,
  type KafkaRecord,
  kafkaRecord,
  RECORD_BATCH_OVERHEAD_BYTES,
  topicProblem,
} from '../kafka-record.ts';

/**
 * What a record must pass before it is sent, and where one that fails goes.
 * One rule for the live stream, replay and snapshot: a replay once checked
 * payload sizes without the headers and the batch overhead, and had no
 * dead-letter topic.
 */
export interface RecordRules {
  /** Largest record the brokers take (their message.max.bytes), batch header included. */
  maxRecordBytes: number;
  /**
   * Where a stand-in goes for a record that cannot be sent: one over
   * maxRecordBytes (without its payload), or an unmappable row (an illegal
   * topic name, an empty topic column). Unset: such a record stops the run.
   */
  deadLetterTopic: string | undefined;
  /** Who stops on a record that cannot be sent: it words the way out. */
  publisher: Publisher;
}

/** The live stream (`run`), or a replay or snapshot run. */
export type Publisher = 'stream' | 'replay';

/** Encoded bytes of a produce request's batch holding records of `recordBytes`: the size rule. */
export function batchBytes(recordBytes: number): number {
  return recordBytes + RECORD_BATCH_OVERHEAD_BYTES;
}

/**
 * A record the brokers would refuse can never be sent: retrying it would pin
 * WAL until the slot is invalidated (or fail a replay at the row every time),
 * so it stops the run, naming the row, or goes to the dead-letter topic as a
 * stand-in.
 */
export function fitOrDeadLetter(record: KafkaRecord, rules: RecordRules): KafkaRecord {
  const problem = record.unmappable ?? topicProblem(record.topic);
  const { deadLetterTopic, maxRecordBytes } = rules;
  if (problem !== undefined) {
    if (!deadLetterTopic) throw rowUnmappable(record, problem, rules.publisher);
    const why = { reason: 'OUTBOX_ROW_UNMAPPABLE', detail: problem };
    // The payload is kept (the row can be re-published from it) unless it is what does not fit.
    const standIn = deadLetter(deadLetterTopic, record, why, record.value);
    if (batchBytes(standIn.sizeBytes) <= maxRecordBytes) return standIn;
    return deadLetter(deadLetterTopic, record, why, undefined);
  }
  const size = batchBytes(record.sizeBytes);
  if (size <= maxRecordBytes) return record;
  if (!deadLetterTopic) throw recordTooLarge(record, size, maxRecordBytes);
  const why = { reason: 'RECORD_TOO_LARGE', 'size-bytes': String(size), 'limit-bytes': String(maxRecordBytes) };
  return deadLetter(deadLetterTopic, record, why, undefined);
}

/**
 * A stand-in on the dead-letter topic: the record's key and headers, plus
 * walnut-dlq-topic (where it was bound) and a walnut-dlq-<name> header per entry of `why`.
 */
function deadLetter(
  topic: string,
  record: KafkaRecord,
  why: { reason: string } & Record<string, string>,
  value: Buffer | undefined,
): KafkaRecord {
  const headers = new Map(record.headers);
  headers.set(headerName('walnut-dlq-topic'), Buffer.from(record.topic, 'utf8'));
  for (const [name, text] of Object.entries(why))
    headers.set(headerName(`walnut-dlq-${name}`), Buffer.from(text, 'utf8'));
  return kafkaRecord(topic, record.key, value, headers, record.source, record.position);
}

function rowUnmappable(record: KafkaRecord, problem: string, publisher: Publisher): RelayError {
  if (publisher === 'replay') {
    return new RelayError(
      'OUTBOX_ROW_UNMAPPABLE',
      `${record.source} cannot be re-published: ${problem}. The run stopped at this row rather than skip it; the pages acked before it are saved. Either set RELAY_DEAD_LETTER_TOPIC (the row's stand-in goes there and the rows after it are re-published), or change RELAY_TOPIC_TEMPLATE so that this row maps to a legal topic; then continue with --resume`,
      { retryable: false },
    );
  }
  const { commitLsn, seq } = record.position;
  return new RelayError(
    'OUTBOX_ROW_UNMAPPABLE',
    `${record.source} (transaction committed at LSN ${formatLsn(commitLsn)}, its event #${seq}) cannot be relayed: ${problem}. The relay has stopped streaming at this row rather than skip it; its slot keeps the WAL from here. Either set RELAY_DEAD_LETTER_TOPIC (the row's stand-in goes there and the rows after it are relayed) and restart the relay, or change RELAY_TOPIC_TEMPLATE (RELAY_MESSAGE_TOPIC_TEMPLATE for pg_logical_emit_message records) so that this row maps to a legal topic, and restart the relay`,
    { retryable: false },
  );
}

function recordTooLarge(record: KafkaRecord, size: number, limit: number): RelayError {
  return new RelayError(
    'RECORD_TOO_LARGE',
    `${record.source} for topic ${record.topic} encodes to ${size} bytes, over the brokers' limit of ${limit} (RELAY_MAX_RECORD_BYTES): raise message.max.bytes / max.message.bytes and RELAY_MAX_RECORD_BYTES, or set RELAY_DEAD_LETTER_TOPIC`,
    { retryable: false },
  );
}
