import { RelayError } from '../errors.ts';
import type { RelayProducer } from '../kafka-producer.ts';
import type { KafkaRecord, RecordPosition } from '../kafka-record.ts';
import { releaseRecord } from '../wire-record.ts';
import { CheckpointSchedule } from './checkpoint-schedule.ts';
import { KafkaRequests } from './kafka-requests.ts';
import type { KafkaSinkOptions } from './kafka-sink-options.ts';
import { type Pending, RecordBuffer } from './record-buffer.ts';
import { fitOrDeadLetter } from './record-rules.ts';
import { toSendFailure } from './send-failure.ts';
import type { RecordSink, SinkEvents } from './sink.ts';

/** A produce request sent and not yet settled, in send order. */
interface Request<Token> {
  batch: Array<Pending<Token>>;
  bytes: number;
  /** What the request's checkpoint record named (null: it had none). */
  checkpoint: RecordPosition | null;
  started: number;
  /** Kafka acked its records (it no longer counts as in flight). */
  sent: boolean;
  /** Its records are durable: acked, and in a transaction, committed. */
  durable: boolean;
}

/**
 * The Kafka sink: batches pushed records into produce requests, up to
 * maxRequestsInFlight at a time, and acks them to the caller in push order
 * once Kafka has acked them (acks=all) or, in a transaction, committed them.
 *
 * Fencing: before anything is pushed, start() takes over the transactional id
 * (InitProducerId), which bumps its epoch and aborts whatever an older owner
 * left open. The stream's records then go out idempotently with that producer
 * id and epoch, outside transactions: a partition leader that has seen the
 * new epoch refuses the old one, so a send an earlier session gave up on can
 * land before this session's records, never after them. Per-batch
 * transactions would give the same fencing at three round trips and a marker
 * wait per batch (docs/decisions/kafka-producer.md).
 *
 * Order with several requests in flight: the producer numbers each partition's
 * batches when a request is issued (a pnpm patch; upstream numbered them on the
 * ack and allowed one request), and a partition leader appends a producer's
 * batch only if it follows the last one it appended. A request that fails or is
 * retried out of turn makes the leader refuse the ones after it, which fails
 * the sink: the stream's next session fences the old sends and replays from
 * the slot. Acks are applied in send order, so the caller (the LSN rule, the
 * replay's cursor) and the checkpoint only ever see a prefix of what was sent.
 *
 * push() resolves only when the window (records and bytes) has room, so a slow
 * or absent broker stops the reader (backpressure) instead of growing memory.
 */
export class KafkaSink<Token> implements RecordSink<Token> {
  private readonly buffer: RecordBuffer<Token>;
  /** Requests sent and not yet settled, oldest first. */
  private requests: Array<Request<Token>> = [];
  /** Requests Kafka has not acked yet: what maxRequestsInFlight caps. */
  private sending = 0;
  private inflightRecords = 0;
  private inflightBytes = 0;
  /** A lone checkpoint request is in flight (only ever when no other is). */
  private checkpointing = false;
  private lingerTimer: NodeJS.Timeout | null = null;
  private failure: RelayError | null = null;
  private roomWaiters: Array<() => void> = [];
  private drainWaiters: Array<() => void> = [];
  private readonly kafka: KafkaRequests;
  private readonly checkpoints: CheckpointSchedule | null;

  constructor(
    producer: RelayProducer,
    private readonly options: KafkaSinkOptions,
    private readonly events: SinkEvents<Token>,
  ) {
    this.buffer = new RecordBuffer(options);
    this.kafka = new KafkaRequests(producer, options.transactions, options.sendTimeoutMs);
    const { checkpoint } = options;
    this.checkpoints = checkpoint
      ? new CheckpointSchedule(checkpoint.identity, checkpoint.intervalMs, options.transactions === 'per-request')
      : null;
  }

  async start(): Promise<void> {
    try {
      await this.kafka.fence();
    } catch (cause) {
      throw toSendFailure(cause, this.options);
    }
  }

  get bufferedBytes(): number {
    return this.inflightBytes;
  }

  push(record: KafkaRecord, token: Token): Promise<void> | undefined {
    if (this.failure) throw this.failure;
    const sendable = fitOrDeadLetter(record, this.options);
    this.inflightRecords++;
    this.inflightBytes += sendable.sizeBytes;
    if (this.buffer.add(sendable, token)) this.kick();
    else this.scheduleLinger();
    if (!this.full()) return undefined;
    // Room comes from acks, and a group's acks from its commit: a group that fills the window ends there.
    this.seal();
    return this.room();
  }

  seal(): void {
    if (this.options.transactions !== 'sealed') return;
    if (!this.buffer.endGroup()) this.kafka.seal();
    this.kick();
  }

  private async room(): Promise<void> {
    while (this.full()) {
      if (this.failure) throw this.failure;
      await new Promise<void>((resolve) => this.roomWaiters.push(resolve));
    }
  }

  async drain(timeoutMs?: number): Promise<boolean> {
    this.checkpoints?.flush();
    this.seal();
    this.kick();
    if (this.idle() || this.failure) return this.idle();
    let timer: NodeJS.Timeout | undefined;
    const drained = new Promise<true>((resolve) => this.drainWaiters.push(() => resolve(true)));
    if (timeoutMs === undefined) return drained;
    const timedOut = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), timeoutMs);
    });
    try {
      return await Promise.race([drained, timedOut]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Drops buffered records: the stream's session is over and will replay from the slot. */
  close(): void {
    if (this.lingerTimer) clearTimeout(this.lingerTimer);
    this.lingerTimer = null;
    this.checkpoints?.stop();
    this.failure ??= new RelayError('KAFKA_SEND_FAILED', 'sink closed', { retryable: true });
    this.buffer.clear();
    this.wake();
  }

  private idle(): boolean {
    return this.requests.length === 0 && !this.checkpointing && this.buffer.length === 0;
  }

  private full(): boolean {
    return (
      this.inflightRecords >= this.options.maxInflightRecords || this.inflightBytes >= this.options.maxInflightBytes
    );
  }

  private scheduleLinger(): void {
    if (this.lingerTimer || this.sending > 0 || this.checkpointing) return;
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
    const maxInFlight = this.kafka.maxInFlight(this.options.maxRequestsInFlight);
    while (!this.failure && !this.checkpointing && !this.kafka.committing && this.buffer.length > 0) {
      if (this.sending >= maxInFlight) return;
      const length = this.buffer.nextLength();
      // A partial batch waits while requests are in flight: more records join it meanwhile.
      if (this.sending > 0 && !this.buffer.isFull(length)) return;
      this.sendBatch(length);
    }
    // Idle after a burst: the checkpoint goes alone (once its interval is up), so it does not
    // wait for the next row.
    if (this.idle() && !this.failure && this.checkpoints?.owed) {
      const lone = this.checkpoints.loneWhenDue(() => this.kick());
      if (lone) this.sendCheckpoint(lone.position, [lone.record]);
    }
    if (this.idle()) this.wake();
  }

  private sendBatch(length: number): void {
    const { batch, bytes } = this.buffer.take(length);
    const records = batch.map((pending) => pending.record);
    const last = batch[batch.length - 1] as Pending<Token>;
    const checkpoint = this.checkpoints?.forRequest(last.record.position) ?? null;
    if (checkpoint) records.push(checkpoint.record);
    const request: Request<Token> = {
      batch,
      bytes,
      checkpoint: checkpoint?.position ?? null,
      started: performance.now(),
      sent: false,
      durable: false,
    };
    this.requests.push(request);
    this.sending++;
    this.events.onSent?.(this.sending);
    const { sent, durable } = this.kafka.send(records, last.endsGroup);
    // In a group, acked requests wait for its commit without holding a place in flight.
    if (sent !== durable)
      sent.then(
        () => this.wasSent(request) && this.kick(),
        () => {},
      );
    durable.then(
      () => {
        this.wasSent(request);
        request.durable = true;
        this.settle();
      },
      (cause) => this.failWith(cause, records),
    );
  }

  /** Kafka acked the request: it no longer counts as in flight. False when that is old news. */
  private wasSent(request: Request<Token>): boolean {
    if (this.failure || request.sent) return false;
    request.sent = true;
    this.sending--;
    return true;
  }

  /** Applies acks in send order: a request acked before an earlier one waits for it. */
  private settle(): void {
    if (this.failure) return;
    while (this.requests.length > 0 && (this.requests[0] as Request<Token>).durable) {
      const { batch, bytes, checkpoint, started } = this.requests.shift() as Request<Token>;
      for (const { token } of batch) this.events.acked(token);
      this.inflightRecords -= batch.length;
      this.inflightBytes -= bytes;
      this.checkpoints?.acknowledged((batch[batch.length - 1] as Pending<Token>).record.position, checkpoint);
      this.events.onAcked?.(batch.length, bytes, performance.now() - started);
      // Durable, and read by no one any more: their bytes can carry the records to come.
      for (const { record } of batch) releaseRecord(record);
    }
    this.wake();
    this.kick();
  }

  private sendCheckpoint(position: RecordPosition, records: KafkaRecord[]): void {
    this.checkpointing = true;
    this.kafka.sendAlone(records).then(
      () => {
        this.checkpointing = false;
        if (this.failure) return;
        this.checkpoints?.loneAcked(position);
        this.kick();
      },
      (cause) => this.failWith(cause, records),
    );
  }

  private failWith(cause: unknown, sent: readonly KafkaRecord[]): void {
    if (this.failure) return;
    this.failure = toSendFailure(cause, { ...this.options, sent });
    this.checkpoints?.stop();
    this.buffer.clear();
    this.requests = [];
    this.sending = 0;
    this.checkpointing = false;
    this.events.failed(this.failure);
    this.wake();
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
