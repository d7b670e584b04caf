import {
  type Callback,
  type CallbackWithPromise,
  kPerformWithRetry,
  Producer,
  type ProducerOptions,
} from '@platformatic/kafka';
import type { KafkaConnection } from './config.ts';
import { javaPartitioner } from './java-partitioner.ts';

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
 * instead of landing a stale record after newer ones (see publish/kafka-sink.ts).
 */
export type RelayProducer = Producer<Buffer, Buffer, Buffer, Buffer>;

/** Retries of any other retriable error, 250 ms apart, before a request fails. */
const RETRIES = 10;

/** Where CONCURRENT_TRANSACTIONS retries stop counting: their delay is at its 100 ms cap there. */
const CONCURRENT_PLATEAU = 6;

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
  return new BudgetedProducer(settings.requestTimeoutMs, {
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
    partitioner: javaPartitioner,
    autocreateTopics: true,
    timeout: settings.requestTimeoutMs,
    maxInflights: settings.maxRequestsInFlight,
    // Bounded, unlike the library's default for idempotent producers (forever): a
    // send that cannot complete fails the session, whose new producer fences this one.
    retries: RETRIES,
    retryDelay: retryDelayMs,
  });
}

/**
 * Retries CONCURRENT_TRANSACTIONS for a time, not a count. The coordinator
 * answers it while the previous transaction's markers are still being
 * written, which is a few ms, but during a partition leader move (or while a
 * partition of the transaction has no leader) as long as the move takes: ten
 * retries, about 0.6 s, gave up long before, and the session failed and
 * fenced itself again. So those retries do not count towards RETRIES until
 * budgetMs (the send timeout, which the sink also waits at most) has passed
 * since the operation's first try; any other error counts as before.
 */
class BudgetedProducer extends Producer<Buffer, Buffer, Buffer, Buffer> {
  /** First try of each retry chain, keyed by the chain's error list (the library passes the same array along). */
  private readonly chains = new WeakMap<Error[], number>();

  constructor(
    private readonly budgetMs: number,
    options: ProducerOptions<Buffer, Buffer, Buffer, Buffer>,
  ) {
    super(options);
  }

  override [kPerformWithRetry]<ReturnType>(
    operationId: string,
    operation: (callback: Callback<ReturnType>) => void,
    callback: CallbackWithPromise<ReturnType>,
    attempt = 0,
    errors: Error[] = [],
    shouldSkipRetry?: (e: Error) => boolean,
  ) {
    const now = performance.now();
    if (attempt === 0) this.chains.set(errors, now);
    const next = countedAttempt(attempt, errors.at(-1), now - (this.chains.get(errors) ?? now), this.budgetMs);
    return super[kPerformWithRetry](operationId, operation, callback, next, errors, shouldSkipRetry);
  }
}

/**
 * The attempt number a retry goes on with: a CONCURRENT_TRANSACTIONS retry
 * within the budget is held at CONCURRENT_PLATEAU, so it never reaches RETRIES
 * (and its delay stays at 100 ms); past the budget, counting resumes. Pure.
 */
export function countedAttempt(
  attempt: number,
  lastError: Error | undefined,
  elapsedMs: number,
  budgetMs: number,
): number {
  if (attempt <= CONCURRENT_PLATEAU || !lastError || !isConcurrentTransactions(lastError)) return attempt;
  return elapsedMs < budgetMs ? CONCURRENT_PLATEAU : attempt;
}

function isConcurrentTransactions(error: Error): boolean {
  return Boolean(
    (error as { findBy?: (k: string, v: unknown) => unknown }).findBy?.('apiId', 'CONCURRENT_TRANSACTIONS'),
  );
}

/**
 * A transaction's first request waits while the coordinator is still writing
 * the previous one's commit markers (CONCURRENT_TRANSACTIONS, usually a few ms).
 * The library's flat 250 ms delay made every transaction after a commit wait
 * that long; this retries it the way the Java client does, within milliseconds. Everything else backs off 250 ms.
 */
function retryDelayMs(_client: unknown, _operation: string, attempt: number, _retries: number, error: Error): number {
  return isConcurrentTransactions(error) ? Math.min(2 * 2 ** attempt, 100) : 250;
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
