import { compatibilityPartitioner, Producer } from '@platformatic/kafka';
import type { KafkaConnection } from './config.ts';

/**
 * The relay's Kafka producer: @platformatic/kafka, idempotent, one per session.
 *
 * Why not kafkajs (which the applier and the test harness still use): on a
 * 3-broker cluster with leaders moving, kafkajs 2.2.4 resolved sends whose
 * records never reached the topic (kafkajs pull request #1798, unreleased), and
 * it costs about twice the CPU per record. docs/decisions/kafka-producer.md
 * has the measurements.
 *
 * Why a transactional id although records go out without transactions: the id
 * is stable per slot, so the InitProducerId of a new session (or of a restarted
 * or standby relay) bumps its epoch, and partition leaders that have seen the
 * new epoch refuse the old one. A send of an abandoned session that is still
 * retrying, or sitting in a frozen broker's socket buffer, is then refused
 * instead of landing a stale record after newer ones (see kafka-sink.ts).
 */
export type RelayProducer = Producer<Buffer, Buffer, Buffer, Buffer>;

export interface ProducerSettings {
  transactionalId: string;
  /** Per request (and the transaction timeout InitProducerId registers). */
  requestTimeoutMs: number;
  /** Produce requests in flight per connection (at most 5: see the pnpm patch). */
  maxRequestsInFlight: number;
}

/** Connection options every @platformatic/kafka client of the relay shares. */
export function clientOptions(kafka: KafkaConnection, role?: string) {
  return {
    clientId: role ? `${kafka.clientId}-${role}` : kafka.clientId,
    bootstrapBrokers: kafka.brokers,
    ...(kafka.ssl ? { tls: kafka.ssl === true ? {} : { ca: kafka.ssl.ca }, tlsServerName: true } : {}),
    ...(kafka.sasl ? { sasl: kafka.sasl } : {}),
    connectTimeout: 5_000,
  };
}

export function createProducer(kafka: KafkaConnection, settings: ProducerSettings): RelayProducer {
  return new Producer({
    ...clientOptions(kafka),
    idempotent: true,
    transactionalId: settings.transactionalId,
    // -1/-1 asks the coordinator for the current producer id of this transactional
    // id with a bumped epoch; the library's default (0/0) is refused as fenced
    // once any producer has used the id.
    producerId: -1n,
    producerEpoch: -1,
    // The Java client's partitioner (murmur2 & 0x7fffffff), which kafkajs's default
    // also is: a key keeps its partition across the producer change.
    partitioner: compatibilityPartitioner,
    autocreateTopics: true,
    timeout: settings.requestTimeoutMs,
    maxInflights: settings.maxRequestsInFlight,
    // Bounded, unlike the library's default for idempotent producers (forever): a
    // send that cannot complete fails the session, whose new producer fences this one.
    retries: 10,
    retryDelay: retryDelayMs,
  });
}

/**
 * A transaction's first request waits while the coordinator is still writing
 * the previous one's commit markers (CONCURRENT_TRANSACTIONS, usually a few ms).
 * The library's flat 250 ms delay made every transaction after a commit wait
 * that long; this retries it the way the Java client does, within milliseconds. Everything else backs off 250 ms.
 */
function retryDelayMs(_client: unknown, _operation: string, attempt: number, _retries: number, error: Error): number {
  const concurrent = (error as { findBy?: (k: string, v: unknown) => unknown }).findBy?.(
    'apiId',
    'CONCURRENT_TRANSACTIONS',
  );
  return concurrent ? Math.min(2 * 2 ** attempt, 100) : 250;
}

/**
 * Closes a producer or consumer at once, failing whatever it still has in
 * flight or retrying. (The library's promise overload is shadowed in its types
 * by the callback one when `force` is passed.)
 */
export function closeForcibly(client: {
  close(force: boolean, callback: (error?: Error | null) => void): void;
}): Promise<void> {
  return new Promise((resolve) => client.close(true, () => resolve()));
}
