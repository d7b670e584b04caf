import type { MessageToProduce } from '@platformatic/kafka';
import type { AckTracker, TxToken } from './ack-tracker.ts';
import { type CheckpointIdentity, checkpointRecord } from './checkpoint.ts';
import { RelayError } from './errors.ts';
import type { RelayProducer } from './kafka-producer.ts';
import {
  headerName,
  type KafkaRecord,
  kafkaRecord,
  RECORD_BATCH_OVERHEAD_BYTES,
  type RecordPosition,
} from './kafka-record.ts';

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
   * Longest wait for one produce request's ack. Past it the session fails and
   * replays from the slot with a new producer, whose epoch fences this one.
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
 * Sends relayed records to Kafka, one produce request in flight at a time, and
 * acks them to the tracker when Kafka has acked them (acks=all).
 *
 * Fencing: before any WAL is read, start() takes over the slot's transactional
 * id (InitProducerId), which bumps its epoch and aborts whatever an older
 * session or relay left open. The records then go out idempotently with that
 * producer id and epoch, outside transactions: a partition leader that has
 * seen the new epoch refuses the old one, so a send an earlier session gave up
 * on can land before this session's records, never after them. Per-batch
 * transactions would give the same fencing at three round trips and a marker
 * wait per batch (measured: 20-30 ms per one-row batch against 4-5 ms).
 *
 * One request at a time keeps per-key order: the idempotent producer numbers a
 * partition's batches, and a second concurrent send would be numbered from the
 * same sequence. Throughput comes from batching instead: while a request is in
 * flight, records pile up and leave together in the next one.
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
  /** Where the last acked record sits: what the next request's checkpoint says. */
  private acked: RecordPosition | null = null;
  /** The position the last acked checkpoint named. */
  private checkpointed: RecordPosition | null = null;

  constructor(
    private readonly producer: RelayProducer,
    private readonly tracker: AckTracker,
    private readonly options: KafkaSinkOptions,
    private readonly onFatal: (error: RelayError) => void,
    private readonly observer?: SinkObserver,
  ) {}

  /**
   * Takes over the slot's transactional id before any WAL is read: the
   * coordinator bumps its epoch and aborts what an earlier session left open.
   * No transaction is kept: the empty one is dropped on the client.
   */
  async start(): Promise<void> {
    const deadline = performance.now() + this.options.sendTimeoutMs;
    try {
      const transaction = await this.beforeDeadline(this.producer.beginTransaction(), deadline);
      await transaction.cancel();
    } catch (cause) {
      throw toSendFailure(cause, this.options.maxRecordBytes);
    }
  }

  /** Encoded bytes buffered or sent and not yet acked. */
  get bufferedBytes(): number {
    return this.inflightBytes;
  }

  /**
   * Takes a record. Returns a promise only when the window is full (the caller
   * must wait for it before pushing more); undefined when there is room, so the
   * common case costs no promise. Throws once the sink has failed.
   */
  push(record: KafkaRecord, token: TxToken): Promise<void> | undefined {
    if (this.failure) throw this.failure;
    const sendable = this.fitOrDeadLetter(record);
    this.buffer.push({ record: sendable, token });
    this.inflightBytes += sendable.sizeBytes;
    if (this.buffer.length >= this.options.maxBatchRecords) this.kick();
    else this.scheduleLinger();
    return this.full() ? this.room() : undefined;
  }

  private async room(): Promise<void> {
    while (this.full()) {
      if (this.failure) throw this.failure;
      await new Promise<void>((resolve) => this.roomWaiters.push(resolve));
    }
  }

  /** Resolves true once every pushed record is acked, false after timeoutMs. */
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
      while (!this.failure) {
        if (this.buffer.length > 0) await this.sendBatch();
        // Idle after a burst: the checkpoint goes alone, so it does not wait for the next row.
        else if (this.acked !== this.checkpointed) await this.sendCheckpoint();
        else break;
      }
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
   * One produce request. It also carries the checkpoint of what Kafka had
   * acked before it: a request spanning partitions is not atomic, so a
   * checkpoint never names a record of its own request.
   */
  private async sendBatch(): Promise<void> {
    const started = performance.now();
    const batch = this.buffer.splice(0, this.batchLength());
    const messages = batch.map((p) => p.record);
    const checkpoint = this.acked;
    if (checkpoint) messages.push(checkpointRecord(this.options.checkpoint, checkpoint));
    // The library takes a missing key or value as null, which is what undefined means here.
    await this.beforeDeadline(
      this.producer.send({ messages: messages as MessageToProduce[] }),
      started + this.options.sendTimeoutMs,
    );
    if (this.failure) return;
    let bytes = 0;
    for (const { record, token } of batch) {
      this.tracker.ack(token);
      bytes += record.sizeBytes;
    }
    this.inflightBytes -= bytes;
    this.checkpointed = checkpoint;
    this.acked = (batch[batch.length - 1] as Pending).record.position;
    this.observer?.onAcked(batch.length, bytes, performance.now() - started);
    this.wake();
  }

  private async sendCheckpoint(): Promise<void> {
    const checkpoint = this.acked as RecordPosition;
    const messages = [checkpointRecord(this.options.checkpoint, checkpoint)];
    await this.beforeDeadline(
      this.producer.send({ messages: messages as MessageToProduce[] }),
      performance.now() + this.options.sendTimeoutMs,
    );
    this.checkpointed = checkpoint;
  }

  private async beforeDeadline<T>(operation: Promise<T>, deadline: number): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`no ack within ${this.options.sendTimeoutMs} ms`)),
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
  return new RelayError('KAFKA_SEND_FAILED', `Kafka did not ack a batch: ${message}`, {
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
