import type { MessageToProduce } from '@platformatic/kafka';
import { formatLsn } from '@walnut/schema';
import type { AckTracker, TxToken } from './ack-tracker.ts';
import { type CheckpointIdentity, checkpointRecord } from './checkpoint/checkpoint.ts';
import { RelayError } from './errors.ts';
import type { RelayProducer } from './kafka-producer.ts';
import {
  headerName,
  type KafkaRecord,
  kafkaRecord,
  RECORD_BATCH_OVERHEAD_BYTES,
  type RecordPosition,
  topicProblem,
} from './kafka-record.ts';

/** What the sink tells the LSN rule (acks) and asks it (records in flight, for the window). */
export type RecordAcks = Pick<AckTracker, 'ack' | 'inflightRecords'>;

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
  /**
   * Produce requests in flight at once (1-5). Beyond the first, a request goes
   * only when it is full (maxBatchRecords or maxBatchBytes); a partial batch
   * waits for the requests ahead of it, gathering more records meanwhile.
   */
  maxRequestsInFlight: number;
  /** Largest record the brokers take (their message.max.bytes, less a batch header). */
  maxRecordBytes: number;
  /**
   * Where a stand-in goes for a record that cannot be sent: one over
   * maxRecordBytes (without its payload), or an unmappable row (an illegal
   * topic name, an empty topic column). Unset: such a record stops the relay.
   */
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
  /**
   * Least time between two checkpoints. Every request carrying one, and a lone one
   * after every quiet moment, doubled the produce requests of a relay at a few
   * hundred rows/s; a checkpoint a second old still says where the relay was.
   */
  checkpointIntervalMs: number;
  /**
   * Exactly-once: each request is one Kafka transaction holding its records and
   * a checkpoint naming the last of them, acked once the transaction commits;
   * one at a time (a producer has one open transaction).
   */
  transactional: boolean;
}

export interface SinkObserver {
  onAcked(records: number, bytes: number, latencyMs: number): void;
  /** A produce request of records went out; requestsInFlight counts it too. */
  onSent?(requestsInFlight: number): void;
}

interface Pending {
  record: KafkaRecord;
  token: TxToken;
}

/** A produce request sent and not yet settled, in send order. */
interface Request {
  batch: Pending[];
  bytes: number;
  /** What the request's checkpoint record named (null: it had none). */
  checkpoint: RecordPosition | null;
  started: number;
  acked: boolean;
}

/**
 * Sends relayed records to Kafka, up to maxRequestsInFlight produce requests at
 * a time, and acks them to the tracker when Kafka has acked them (acks=all).
 *
 * Fencing: before any WAL is read, start() takes over the slot's transactional
 * id (InitProducerId), which bumps its epoch and aborts whatever an older
 * session or relay left open. The records then go out idempotently with that
 * producer id and epoch, outside transactions: a partition leader that has
 * seen the new epoch refuses the old one, so a send an earlier session gave up
 * on can land before this session's records, never after them. Per-batch
 * transactions would give the same fencing at three round trips and a marker
 * wait per batch (docs/decisions/kafka-producer.md).
 *
 * Order with several requests in flight: the producer numbers each partition's
 * batches when a request is issued (a pnpm patch; upstream numbered them on the
 * ack and allowed one request), and a partition leader appends a producer's
 * batch only if it follows the last one it appended. A request that fails or is
 * retried out of turn makes the leader refuse the ones after it, which fails
 * the session: the new session's epoch fences the old sends, and it replays
 * from the slot. Acks are applied in send order, so the tracker and the
 * checkpoint only ever see a prefix of what was sent.
 *
 * push() resolves only when the window (records and bytes) has room, so a slow
 * or absent broker stops the WAL reader (backpressure) instead of growing memory.
 */
export class KafkaSink {
  private buffer: Pending[] = [];
  /** Requests sent and not yet settled, oldest first. */
  private requests: Request[] = [];
  /** A lone checkpoint request is in flight (only ever when no other is). */
  private checkpointing = false;
  private lingerTimer: NodeJS.Timeout | null = null;
  private failure: RelayError | null = null;
  private roomWaiters: Array<() => void> = [];
  private drainWaiters: Array<() => void> = [];
  private inflightBytes = 0;
  /** Encoded bytes of the buffered records (not yet in a request). */
  private bufferBytes = 0;
  /** Where the last acked record sits: what the next request's checkpoint says. */
  private acked: RecordPosition | null = null;
  /** The position the last acked checkpoint named. */
  private checkpointed: RecordPosition | null = null;
  /** The position the last sent checkpoint named, and when it was sent. */
  private checkpointSent: RecordPosition | null = null;
  private checkpointSentAt = Number.NEGATIVE_INFINITY;
  private checkpointTimer: NodeJS.Timeout | null = null;
  /** drain() was called: the last checkpoint goes at once. */
  private flushing = false;

  constructor(
    private readonly producer: RelayProducer,
    private readonly tracker: RecordAcks,
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
    this.bufferBytes += sendable.sizeBytes;
    if (
      this.buffer.length >= this.options.maxBatchRecords ||
      this.bufferBytes + RECORD_BATCH_OVERHEAD_BYTES > this.options.maxBatchBytes
    ) {
      this.kick();
    } else {
      this.scheduleLinger();
    }
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
    this.flushing = true;
    this.kick();
    if (this.idle() || this.failure) return this.idle();
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
    this.clearCheckpointTimer();
    this.failure ??= new RelayError('KAFKA_SEND_FAILED', 'sink closed', { retryable: true });
    this.buffer = [];
    this.bufferBytes = 0;
    this.wake();
  }

  private idle(): boolean {
    return this.requests.length === 0 && !this.checkpointing && this.buffer.length === 0;
  }

  private full(): boolean {
    return (
      this.tracker.inflightRecords >= this.options.maxInflightRecords ||
      this.inflightBytes >= this.options.maxInflightBytes
    );
  }

  /**
   * A record the brokers would refuse can never be sent: retrying it would pin
   * WAL until the slot is invalidated, and its session would fail again each
   * time it reached the row. It stops the relay, naming the row, or goes to the
   * dead-letter topic as a stand-in.
   */
  private fitOrDeadLetter(record: KafkaRecord): KafkaRecord {
    const problem = record.unmappable ?? topicProblem(record.topic);
    const { deadLetterTopic, maxRecordBytes } = this.options;
    if (problem !== undefined) {
      if (!deadLetterTopic) throw rowUnmappable(record, problem);
      const why = { reason: 'OUTBOX_ROW_UNMAPPABLE', detail: problem };
      // The payload is kept (the row can be re-published from it) unless it is what does not fit.
      const standIn = deadLetter(deadLetterTopic, record, why, record.value);
      if (standIn.sizeBytes + RECORD_BATCH_OVERHEAD_BYTES <= maxRecordBytes) return standIn;
      return deadLetter(deadLetterTopic, record, why, undefined);
    }
    const size = record.sizeBytes + RECORD_BATCH_OVERHEAD_BYTES;
    if (size <= maxRecordBytes) return record;
    if (!deadLetterTopic) throw recordTooLarge(record, size, maxRecordBytes);
    const why = { reason: 'RECORD_TOO_LARGE', 'size-bytes': String(size), 'limit-bytes': String(maxRecordBytes) };
    return deadLetter(deadLetterTopic, record, why, undefined);
  }

  private scheduleLinger(): void {
    if (this.lingerTimer || this.requests.length > 0 || this.checkpointing) return;
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
    const maxInFlight = this.options.transactional ? 1 : this.options.maxRequestsInFlight;
    while (!this.failure && !this.checkpointing && this.buffer.length > 0) {
      const inFlight = this.requests.length;
      if (inFlight >= maxInFlight) return;
      const length = this.batchLength();
      // A partial batch waits while requests are in flight: more records join it meanwhile.
      if (inFlight > 0 && !this.batchFull(length)) return;
      this.sendBatch(length);
    }
    // Idle after a burst: the checkpoint goes alone (once its interval is up), so it does not
    // wait for the next row.
    if (this.idle() && !this.failure && this.acked !== this.checkpointed) this.checkpointWhenDue();
    if (this.idle()) this.wake();
  }

  /**
   * One produce request. It also carries the checkpoint of what Kafka had
   * acked before it: a request spanning partitions is not atomic, so a
   * checkpoint never names a record of its own request. A transaction is
   * atomic: there the checkpoint names the request's own last record.
   */
  private sendBatch(length: number): void {
    const batch = this.buffer.splice(0, length);
    let bytes = 0;
    const messages = new Array<KafkaRecord>(batch.length);
    for (let i = 0; i < batch.length; i++) {
      const { record } = batch[i] as Pending;
      messages[i] = record;
      bytes += record.sizeBytes;
    }
    this.bufferBytes -= bytes;
    const started = performance.now();
    const checkpoint = this.options.transactional
      ? (batch[batch.length - 1] as Pending).record.position
      : this.acked !== this.checkpointSent && this.checkpointDue(started)
        ? this.acked
        : null;
    if (checkpoint) {
      messages.push(checkpointRecord(this.options.checkpoint, checkpoint));
      this.checkpointSent = checkpoint;
      this.checkpointSentAt = started;
    }
    const request: Request = { batch, bytes, checkpoint, started, acked: false };
    this.requests.push(request);
    this.observer?.onSent?.(this.requests.length);
    // The library takes a missing key or value as null, which is what undefined means here.
    this.beforeDeadline(
      this.options.transactional
        ? this.sendTransaction(messages as MessageToProduce[])
        : this.producer.send({ messages: messages as MessageToProduce[] }).then(() => {}),
      request.started + this.options.sendTimeoutMs,
    ).then(
      () => {
        request.acked = true;
        this.settle();
      },
      (cause) => this.failWith(cause, messages),
    );
  }

  /**
   * A transaction that fails or times out is left open: the next session's
   * fence (InitProducerId) aborts it, so none of it is ever read_committed.
   */
  private async sendTransaction(messages: MessageToProduce[]): Promise<void> {
    const transaction = await this.producer.beginTransaction();
    await transaction.send({ messages });
    await transaction.commit();
  }

  /** Applies acks in send order: a request acked before an earlier one waits for it. */
  private settle(): void {
    if (this.failure) return;
    while (this.requests.length > 0 && (this.requests[0] as Request).acked) {
      const { batch, bytes, checkpoint, started } = this.requests.shift() as Request;
      for (const { token } of batch) this.tracker.ack(token);
      this.inflightBytes -= bytes;
      if (checkpoint) this.checkpointed = checkpoint;
      this.acked = (batch[batch.length - 1] as Pending).record.position;
      this.observer?.onAcked(batch.length, bytes, performance.now() - started);
    }
    this.wake();
    this.kick();
  }

  private checkpointDue(now: number): boolean {
    return this.flushing || now - this.checkpointSentAt >= this.options.checkpointIntervalMs;
  }

  /** Sends the lone checkpoint now if its interval is up, else sets a timer to try again. */
  private checkpointWhenDue(): void {
    const now = performance.now();
    if (this.checkpointDue(now)) {
      this.clearCheckpointTimer();
      this.sendCheckpoint();
    } else if (!this.checkpointTimer) {
      this.checkpointTimer = setTimeout(
        () => {
          this.checkpointTimer = null;
          this.kick();
        },
        this.checkpointSentAt + this.options.checkpointIntervalMs - now,
      );
      // A pending checkpoint alone must not keep a stopping process alive.
      this.checkpointTimer.unref();
    }
  }

  private clearCheckpointTimer(): void {
    if (this.checkpointTimer) clearTimeout(this.checkpointTimer);
    this.checkpointTimer = null;
  }

  private sendCheckpoint(): void {
    const checkpoint = this.acked as RecordPosition;
    this.checkpointing = true;
    this.checkpointSent = checkpoint;
    this.checkpointSentAt = performance.now();
    const messages = [checkpointRecord(this.options.checkpoint, checkpoint)];
    this.beforeDeadline(
      this.producer.send({ messages: messages as MessageToProduce[] }),
      performance.now() + this.options.sendTimeoutMs,
    ).then(
      () => {
        this.checkpointing = false;
        if (this.failure) return;
        this.checkpointed = checkpoint;
        this.kick();
      },
      (cause) => this.failWith(cause, messages),
    );
  }

  private failWith(cause: unknown, sent: readonly KafkaRecord[]): void {
    if (this.failure) return;
    this.failure = toSendFailure(cause, this.options.maxRecordBytes, sent);
    this.clearCheckpointTimer();
    this.buffer = [];
    this.bufferBytes = 0;
    this.requests = [];
    this.checkpointing = false;
    this.onFatal(this.failure);
    this.wake();
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

  /** Whether a batch of the first `length` buffered records is as large as a request may be. */
  private batchFull(length: number): boolean {
    if (length >= this.options.maxBatchRecords) return true;
    // batchLength stopped short of the whole buffer only because of the byte cap.
    return length < this.buffer.length;
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
    if (this.idle()) {
      const drained = this.drainWaiters;
      this.drainWaiters = [];
      for (const resolve of drained) resolve();
    }
  }
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

function rowUnmappable(record: KafkaRecord, problem: string): RelayError {
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

/** Whether the library's error (or one it wraps) carries this Kafka error name. */
function hasKafkaError(error: unknown, apiId: string): boolean {
  const found = (error as { findBy?: (key: string, value: unknown) => unknown } | null)?.findBy?.('apiId', apiId);
  return Boolean(found);
}

/**
 * Kafka errors no retry of the same records can get past: the client gives up on
 * them at once (or, for an unknown topic, after its metadata retries), and so
 * does the relay, until a human creates the topic or grants the ACL.
 */
const TOPIC_REFUSALS = ['INVALID_TOPIC_EXCEPTION', 'TOPIC_AUTHORIZATION_FAILED', 'UNKNOWN_TOPIC_OR_PARTITION'];

/**
 * The client answers UNKNOWN_TOPIC_OR_PARTITION, once its metadata retries are
 * spent, with a UserError of its own ("Unknown topic x.") that keeps no apiId.
 */
function unknownTopic(error: unknown): boolean {
  const found = (error as { findBy?: (key: string, value: unknown) => unknown } | null)?.findBy?.(
    'code',
    'PLT_KFK_USER',
  );
  return found instanceof Error && found.message.startsWith('Unknown topic');
}

/** `sent`: the records of the failed request, whose topics the error names; empty for the fence. */
export function toSendFailure(cause: unknown, maxRecordBytes: number, sent: readonly KafkaRecord[] = []): RelayError {
  if (cause instanceof RelayError) return cause;
  const refusal =
    TOPIC_REFUSALS.find((apiId) => hasKafkaError(cause, apiId)) ??
    (unknownTopic(cause) ? 'UNKNOWN_TOPIC_OR_PARTITION' : undefined);
  if (refusal) {
    const topics = [...new Set(sent.map((r) => r.topic))].join(', ') || 'unknown';
    const detail = cause instanceof Error ? errorText(cause) : String(cause);
    return new RelayError(
      'KAFKA_TOPIC_REFUSED',
      `Kafka refused records for topic(s) ${topics} with ${refusal} (${detail}). Retrying the same records cannot help: create the topic (the brokers have auto.create.topics.enable off), or grant the relay's principal WRITE and DESCRIBE on it, or change RELAY_TOPIC_TEMPLATE (RELAY_MESSAGE_TOPIC_TEMPLATE for pg_logical_emit_message records) and restart the relay. Until then the relay is blocked and tries again every RELAY_BACKOFF_MAX_MS`,
      { retryable: true, cause },
    );
  }
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
