import type { MessageToProduce } from '@platformatic/kafka';
import type { AckTracker, TxToken } from './ack-tracker.ts';
import { type CheckpointIdentity, checkpointRecord } from './checkpoint.ts';
import { RelayError } from './errors.ts';
import type { RelayProducer } from './kafka-producer.ts';
import { headerName, type KafkaRecord, kafkaRecord, RECORD_BATCH_OVERHEAD_BYTES } from './kafka-record.ts';

type RelayTransaction = Awaited<ReturnType<RelayProducer['beginTransaction']>>;

export interface KafkaSinkOptions {
  /** Most records in one produce request. */
  maxBatchRecords: number;
  /**
   * Most encoded bytes (records with their headers and framing) in one produce
   * request. The broker refuses a partition's record batch above its
   * message.max.bytes (1 MiB by default), and a request carries one batch per
   * partition, so a request under it can never be refused for its size.
   */
  maxBatchBytes: number;
  /** Largest record the brokers take (their message.max.bytes, less a batch header). */
  maxRecordBytes: number;
  /** Where a record over maxRecordBytes goes, as a small stand-in; unset: the relay stops. */
  deadLetterTopic: string | undefined;
  /**
   * Longest a Kafka transaction may take from its first send to its commit. Past
   * it the session fails and replays from the slot with a new producer, which
   * fences this one.
   */
  sendTimeoutMs: number;
  /** How long a lone record waits for company before it is sent. */
  lingerMs: number;
  /** Records buffered or unacked before push() makes the WAL reader wait. */
  maxInflightRecords: number;
  /** Encoded bytes buffered or unacked before push() makes the WAL reader wait. */
  maxInflightBytes: number;
  /** Where each request's checkpoint goes (see checkpoint.ts). */
  checkpoint: CheckpointIdentity;
}

export interface SinkObserver {
  onAcked(records: number, bytes: number, latencyMs: number): void;
}

interface Pending {
  record: KafkaRecord;
  token: TxToken;
}

/**
 * Sends relayed records to Kafka in Kafka transactions, one transaction and one
 * produce request at a time, and acks them to the tracker only once the
 * transaction has committed.
 *
 * One request at a time keeps per-key order: the idempotent producer numbers a
 * partition's batches, and a second concurrent send would be numbered from the
 * same sequence. Throughput comes from batching instead: while a request is in
 * flight, records pile up and leave together in the next one, and a busy
 * transaction takes several requests before it commits, so the commit's round
 * trips are paid once per transaction, not once per request.
 *
 * push() resolves only when the window (records and bytes) has room, so a slow
 * or absent broker stops the WAL reader (backpressure) instead of growing memory.
 */
export class KafkaSink {
  private buffer: Pending[] = [];
  private sending = false;
  private lingerTimer: NodeJS.Timeout | null = null;
  private failure: RelayError | null = null;
  private roomWaiters: Array<() => void> = [];
  private drainWaiters: Array<() => void> = [];
  private inflightBytes = 0;
  /** Begun ahead of need: beginning is what fences earlier producers (see start()). */
  private nextTransaction: Promise<RelayTransaction> | null = null;

  constructor(
    private readonly producer: RelayProducer,
    private readonly tracker: AckTracker,
    private readonly options: KafkaSinkOptions,
    private readonly onFatal: (error: RelayError) => void,
    private readonly observer?: SinkObserver,
  ) {}

  /**
   * Begins the first transaction before any WAL is read: the producer's
   * InitProducerId bumps the epoch of the slot's transactional id, which aborts
   * what an earlier session or relay left open and refuses its late sends, so
   * none of them can land after this session's records.
   */
  async start(): Promise<void> {
    this.nextTransaction = this.producer.beginTransaction();
    const deadline = performance.now() + this.options.sendTimeoutMs;
    try {
      await this.beforeDeadline(this.nextTransaction, deadline);
    } catch (cause) {
      throw toSendFailure(cause, this.options.maxRecordBytes);
    }
  }

  /** Encoded bytes buffered or sent and not yet committed. */
  get bufferedBytes(): number {
    return this.inflightBytes;
  }

  async push(record: KafkaRecord, token: TxToken): Promise<void> {
    if (this.failure) throw this.failure;
    const sendable = this.fitOrDeadLetter(record);
    this.buffer.push({ record: sendable, token });
    this.inflightBytes += sendable.sizeBytes;
    if (this.buffer.length >= this.options.maxBatchRecords) this.kick();
    else this.scheduleLinger();
    while (this.full()) {
      if (this.failure) throw this.failure;
      await new Promise<void>((resolve) => this.roomWaiters.push(resolve));
    }
  }

  /** Resolves true once every pushed record is committed, false after timeoutMs. */
  async drain(timeoutMs: number): Promise<boolean> {
    this.kick();
    const idle = () => !this.sending && this.buffer.length === 0;
    if (idle() || this.failure) return idle();
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), timeoutMs);
    });
    const drained = new Promise<true>((resolve) => this.drainWaiters.push(() => resolve(true)));
    try {
      return await Promise.race([drained, timedOut]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Drops buffered records: the session is over and will replay from the slot. */
  close(): void {
    if (this.lingerTimer) clearTimeout(this.lingerTimer);
    this.lingerTimer = null;
    this.failure ??= new RelayError('KAFKA_SEND_FAILED', 'sink closed', { retryable: true });
    this.buffer = [];
    this.wake();
  }

  private full(): boolean {
    return (
      this.tracker.inflightRecords >= this.options.maxInflightRecords ||
      this.inflightBytes >= this.options.maxInflightBytes
    );
  }

  /**
   * A record the brokers would refuse can never be sent: retrying it would pin
   * WAL until the slot is invalidated. It stops the relay, naming the row, or
   * goes to the dead-letter topic as a stand-in without its payload.
   */
  private fitOrDeadLetter(record: KafkaRecord): KafkaRecord {
    const size = record.sizeBytes + RECORD_BATCH_OVERHEAD_BYTES;
    if (size <= this.options.maxRecordBytes) return record;
    const { deadLetterTopic } = this.options;
    if (!deadLetterTopic) throw recordTooLarge(record, size, this.options.maxRecordBytes);
    const headers = new Map(record.headers);
    headers.set(headerName('walnut-dlq-reason'), Buffer.from('RECORD_TOO_LARGE'));
    headers.set(headerName('walnut-dlq-topic'), Buffer.from(record.topic, 'utf8'));
    headers.set(headerName('walnut-dlq-size-bytes'), Buffer.from(String(size)));
    headers.set(headerName('walnut-dlq-limit-bytes'), Buffer.from(String(this.options.maxRecordBytes)));
    return kafkaRecord(deadLetterTopic, record.key, undefined, headers, record.source, record.position);
  }

  private scheduleLinger(): void {
    if (this.lingerTimer || this.sending) return;
    this.lingerTimer = setTimeout(() => {
      this.lingerTimer = null;
      this.kick();
    }, this.options.lingerMs);
  }

  private kick(): void {
    if (this.lingerTimer) {
      clearTimeout(this.lingerTimer);
      this.lingerTimer = null;
    }
    if (this.sending || this.failure || this.buffer.length === 0) return;
    this.sending = true;
    void this.sendLoop();
  }

  private async sendLoop(): Promise<void> {
    try {
      while (this.buffer.length > 0 && !this.failure) await this.sendTransaction();
    } catch (cause) {
      this.failure = toSendFailure(cause, this.options.maxRecordBytes);
      this.buffer = [];
      this.onFatal(this.failure);
    } finally {
      this.sending = false;
      this.wake();
    }
  }

  /**
   * One Kafka transaction: requests while records keep coming (bounded by half
   * the send timeout, so the commit still fits), then the commit, then the acks.
   */
  private async sendTransaction(): Promise<void> {
    const started = performance.now();
    const deadline = started + this.options.sendTimeoutMs;
    const begun = this.nextTransaction ?? this.producer.beginTransaction();
    this.nextTransaction = null;
    const transaction = await this.beforeDeadline(begun, deadline);
    const sent: Pending[] = [];
    let bytes = 0;
    do {
      const batch = this.buffer.splice(0, this.batchLength());
      for (const { record } of batch) bytes += record.sizeBytes;
      sent.push(...batch);
      const messages = batch.map((p) => p.record);
      messages.push(checkpointRecord(this.options.checkpoint, (batch[batch.length - 1] as Pending).record.position));
      // The library takes a missing key or value as null, which is what undefined means here.
      await this.beforeDeadline(transaction.send({ messages: messages as MessageToProduce[] }), deadline);
      if (this.failure) return;
    } while (this.buffer.length > 0 && performance.now() - started < this.options.sendTimeoutMs / 2);
    await this.beforeDeadline(transaction.commit(), deadline);
    if (this.failure) return;
    for (const { token } of sent) this.tracker.ack(token);
    this.inflightBytes -= bytes;
    this.observer?.onAcked(sent.length, bytes, performance.now() - started);
    this.wake();
  }

  private async beforeDeadline<T>(operation: Promise<T>, deadline: number): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`Kafka transaction not committed within ${this.options.sendTimeoutMs} ms`)),
        Math.max(0, deadline - performance.now()),
      );
    });
    try {
      return await Promise.race([operation, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** How many buffered records the next request takes: at least one, within both caps. */
  private batchLength(): number {
    let bytes = 0;
    let count = 0;
    for (const { record } of this.buffer) {
      if (count >= this.options.maxBatchRecords) break;
      bytes += record.sizeBytes;
      if (count > 0 && bytes + RECORD_BATCH_OVERHEAD_BYTES > this.options.maxBatchBytes) break;
      count++;
    }
    return count;
  }

  private wake(): void {
    const room = this.roomWaiters;
    this.roomWaiters = [];
    for (const resolve of room) resolve();
    if (!this.sending && this.buffer.length === 0) {
      const drained = this.drainWaiters;
      this.drainWaiters = [];
      for (const resolve of drained) resolve();
    }
  }
}

function recordTooLarge(record: KafkaRecord, size: number, limit: number): RelayError {
  return new RelayError(
    'RECORD_TOO_LARGE',
    `${record.source} for topic ${record.topic} encodes to ${size} bytes, over the brokers' limit of ${limit} (RELAY_MAX_RECORD_BYTES): raise message.max.bytes / max.message.bytes and RELAY_MAX_RECORD_BYTES, or set RELAY_DEAD_LETTER_TOPIC`,
    { retryable: false },
  );
}

/** Whether the library's error (or one it wraps) carries this Kafka error name. */
function hasKafkaError(error: unknown, apiId: string): boolean {
  const found = (error as { findBy?: (key: string, value: unknown) => unknown } | null)?.findBy?.('apiId', apiId);
  return Boolean(found);
}

function toSendFailure(cause: unknown, maxRecordBytes: number): RelayError {
  if (cause instanceof RelayError) return cause;
  if (hasKafkaError(cause, 'MESSAGE_TOO_LARGE') || hasKafkaError(cause, 'RECORD_LIST_TOO_LARGE')) {
    return new RelayError(
      'RECORD_TOO_LARGE',
      `the brokers refused a batch as too large although each record was under RELAY_MAX_RECORD_BYTES (${maxRecordBytes}): a topic's max.message.bytes is lower; lower RELAY_MAX_BATCH_BYTES and RELAY_MAX_RECORD_BYTES to match`,
      { retryable: false, cause },
    );
  }
  const message = cause instanceof Error ? errorText(cause) : String(cause);
  return new RelayError('KAFKA_SEND_FAILED', `Kafka did not commit a transaction: ${message}`, {
    retryable: true,
    cause,
  });
}

/** The library wraps causes in AggregateErrors; their own messages say what happened. */
function errorText(error: Error): string {
  const inner = (error as { errors?: unknown[] }).errors;
  const last = inner?.[inner.length - 1];
  return last instanceof Error ? `${error.message} (${errorText(last)})` : error.message;
}
