import { RelayError } from '../errors.ts';
import type { KafkaRecord } from '../kafka-record.ts';
import type { Publisher } from './record-rules.ts';

/**
 * The one place where a Kafka client error becomes a RelayError, for the live
 * stream, replay and snapshot alike.
 */
export interface SendContext {
  maxRecordBytes: number;
  publisher: Publisher;
  /** The records of the failed request, whose topics the error names; empty for the fence. */
  sent?: readonly KafkaRecord[];
}

export function toSendFailure(cause: unknown, context: SendContext): RelayError {
  if (cause instanceof RelayError) return cause;
  // A replay has its own transactional id: a fence means a --resume took over, and this run
  // must stop without saving more. The stream's session fails and retries instead: the
  // new session finds the slot taken, or fences the other in turn.
  if (context.publisher === 'replay' && fenced(cause)) {
    return new RelayError(
      'REPLAY_FENCED',
      `fenced: another run of this replay (--resume) took over its transactional id; this run stops, the other one goes on (${errorText(cause)})`,
      { retryable: false, cause },
    );
  }
  const refusal =
    TOPIC_REFUSALS.find((apiId) => hasKafkaError(cause, apiId)) ??
    (unknownTopic(cause) ? 'UNKNOWN_TOPIC_OR_PARTITION' : undefined);
  if (refusal) {
    const topics = [...new Set((context.sent ?? []).map((r) => r.topic))].join(', ') || 'unknown';
    return new RelayError(
      'KAFKA_TOPIC_REFUSED',
      `Kafka refused records for topic(s) ${topics} with ${refusal} (${errorText(cause)}). Retrying the same records cannot help: create the topic (the brokers have auto.create.topics.enable off), or grant the relay's principal WRITE and DESCRIBE on it, or change RELAY_TOPIC_TEMPLATE (RELAY_MESSAGE_TOPIC_TEMPLATE for pg_logical_emit_message records) and restart the relay. Until then the relay is blocked and tries again every RELAY_BACKOFF_MAX_MS`,
      { retryable: true, cause },
    );
  }
  if (hasKafkaError(cause, 'MESSAGE_TOO_LARGE') || hasKafkaError(cause, 'RECORD_LIST_TOO_LARGE')) {
    return new RelayError(
      'RECORD_TOO_LARGE',
      `the brokers refused a batch as too large although each record was under RELAY_MAX_RECORD_BYTES (${context.maxRecordBytes}): a topic's max.message.bytes is lower; lower RELAY_MAX_BATCH_BYTES and RELAY_MAX_RECORD_BYTES to match`,
      { retryable: false, cause },
    );
  }
  return new RelayError('KAFKA_SEND_FAILED', `Kafka did not ack a batch: ${errorText(cause)}`, {
    retryable: true,
    cause,
  });
}

/**
 * Kafka errors no retry of the same records can get past: the client gives up on
 * them at once (or, for an unknown topic, after its metadata retries), and so
 * does the relay, until a human creates the topic or grants the ACL.
 */
const TOPIC_REFUSALS = ['INVALID_TOPIC_EXCEPTION', 'TOPIC_AUTHORIZATION_FAILED', 'UNKNOWN_TOPIC_OR_PARTITION'];

type Searchable = { findBy?: (key: string, value: unknown) => unknown } | null;

/** Whether the library's error (or one it wraps) carries this Kafka error name. */
function hasKafkaError(error: unknown, apiId: string): boolean {
  return Boolean((error as Searchable)?.findBy?.('apiId', apiId));
}

/** Another producer took the transactional id over: its next send, AddPartitionsToTxn or commit is refused. */
function fenced(error: unknown): boolean {
  return (
    Boolean((error as Searchable)?.findBy?.('producerFenced', true)) ||
    hasKafkaError(error, 'PRODUCER_FENCED') ||
    hasKafkaError(error, 'TRANSACTIONAL_ID_AUTHORIZATION_FAILED')
  );
}

/**
 * The client answers UNKNOWN_TOPIC_OR_PARTITION, once its metadata retries are
 * spent, with a UserError of its own ("Unknown topic x.") that keeps no apiId.
 */
function unknownTopic(error: unknown): boolean {
  const found = (error as Searchable)?.findBy?.('code', 'PLT_KFK_USER');
  return found instanceof Error && found.message.startsWith('Unknown topic');
}

/** The library wraps causes in AggregateErrors; their own messages say what happened. */
function errorText(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const inner = (error as { errors?: unknown[] }).errors;
  const last = inner?.[inner.length - 1];
  return last instanceof Error ? `${error.message} (${errorText(last)})` : error.message;
}
