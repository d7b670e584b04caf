import type { Redis } from 'ioredis';
import type { RelayError } from '../errors.ts';
import type { KafkaRecord } from '../kafka-record.ts';
import { releaseRecord } from '../wire-record.ts';
import { type Pending, RecordBuffer } from './record-buffer.ts';
import { fitOrDeadLetter } from './record-rules.ts';
import { entryId, isIdRefusal, refusalVerdict, toRedisFailure, xaddArgs } from './redis-entries.ts';
import type { RedisSinkOptions } from './redis-sink-options.ts';
import type { RecordSink, SinkEvents } from './sink.ts';

/** A pipeline sent and not yet settled, in send order. */
interface Pipeline<Token> {
  batch: Array<Pending<Token>>;
  bytes: number;
  started: number;
  done: boolean;
}

/**
 * The Redis Streams sink: one XADD per record, pipelined (one MULTI/EXEC per
 * batch, up to maxRequestsInFlight of them), acked to the caller in push order
 * once Redis has answered every XADD of the batch and those before it.
 *
 * One connection, so Redis runs the XADDs in the order they were pushed, i.e.
 * commit order in each stream. The client neither reconnects nor resends
 * (redis-sink-options.ts): a lost connection fails the sink, and the stream's
 * next session replays from the slot with a new client. What it resends that
 * Redis already holds is refused by id (redis-entries.ts), and counted as
 * delivered once the stream is seen to hold it.
 *
 * Redis has no fencing: start() only connects. Two relays cannot stream one
 * slot at once (Postgres lets one walsender hold it; the other waits as a
 * standby), and a late pipeline of a dead session can only add ids the new
 * session's would be refused for, never an entry out of order.
 */
export class RedisSink<Token> implements RecordSink<Token> {
  private readonly buffer: RecordBuffer<Token>;
  private pipelines: Array<Pipeline<Token>> = [];
  private inflightRecords = 0;
  private inflightBytes = 0;
  private lingerTimer: NodeJS.Timeout | null = null;
  private failure: RelayError | null = null;
  private roomWaiters: Array<() => void> = [];
  private drainWaiters: Array<() => void> = [];

  constructor(
    private readonly client: Redis,
    private readonly options: RedisSinkOptions,
    private readonly events: SinkEvents<Token>,
  ) {
    this.buffer = new RecordBuffer(options);
  }

  async start(): Promise<void> {
    try {
      if (this.client.status === 'wait') await this.client.connect();
      await this.client.ping();
    } catch (cause) {
      throw toRedisFailure(cause, 'a connection');
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
    return this.room();
  }

  /** Each XADD is durable (or not) on its own: there is no unit to seal. */
  seal(): void {}

  private async room(): Promise<void> {
    while (this.full()) {
      if (this.failure) throw this.failure;
      await new Promise<void>((resolve) => this.roomWaiters.push(resolve));
    }
  }

  async drain(timeoutMs?: number): Promise<boolean> {
    this.kick(true);
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

  close(): void {
    if (this.lingerTimer) clearTimeout(this.lingerTimer);
    this.lingerTimer = null;
    this.failure ??= toRedisFailure(new Error('sink closed'), 'its pipelines');
    this.buffer.clear();
    this.wake();
  }

  private idle(): boolean {
    return this.pipelines.length === 0 && this.buffer.length === 0;
  }

  private full(): boolean {
    return (
      this.inflightRecords >= this.options.maxInflightRecords || this.inflightBytes >= this.options.maxInflightBytes
    );
  }

  private scheduleLinger(): void {
    if (this.lingerTimer || this.pipelines.length > 0) return;
    this.lingerTimer = setTimeout(() => {
      this.lingerTimer = null;
      this.kick();
    }, this.options.lingerMs);
  }

  /** Sends what may go now; beyond the first pipeline in flight, only full ones (or all, when draining). */
  private kick(draining = false): void {
    if (this.lingerTimer) {
      clearTimeout(this.lingerTimer);
      this.lingerTimer = null;
    }
    while (!this.failure && this.buffer.length > 0 && this.pipelines.length < this.options.maxRequestsInFlight) {
      const length = this.buffer.nextLength();
      if (this.pipelines.length > 0 && !draining && !this.buffer.isFull(length)) return;
      this.send(length);
    }
    if (this.idle()) this.wake();
  }

  private send(length: number): void {
    const { batch, bytes } = this.buffer.take(length);
    const pipeline: Pipeline<Token> = { batch, bytes, started: performance.now(), done: false };
    this.pipelines.push(pipeline);
    this.events.onSent?.(this.pipelines.length);
    this.exec(batch.map((pending) => pending.record)).then(
      () => {
        pipeline.done = true;
        this.settle();
      },
      (cause) => this.failWith(toRedisFailure(cause, `a pipeline of ${batch.length} XADDs`)),
    );
  }

  /**
   * Resolves once Redis holds every record; rejects with what went wrong.
   *
   * One MULTI/EXEC (still one round trip): a command Redis refuses while
   * queuing (OOM above maxmemory, say) discards the whole batch. In a plain
   * pipeline Redis would run the XADDs after it, and a later entry of the
   * same stream landing without an earlier one is a gap the resend could not
   * fill: its id would be below the top.
   */
  private async exec(records: readonly KafkaRecord[]): Promise<void> {
    const pipeline = this.client.multi();
    for (const record of records) pipeline.call('XADD', xaddArgs(record, this.options.maxLen));
    const replies = await this.withTimeout(pipeline.exec());
    const refused: KafkaRecord[] = [];
    replies.forEach(([error], index) => {
      if (!error) return;
      if (!isIdRefusal(error)) throw error;
      refused.push(records[index] as KafkaRecord);
    });
    if (refused.length > 0) await this.confirmHeld(refused);
  }

  /** A resend Redis refused by id: delivered if the stream holds the entry (or trimmed past it). */
  private async confirmHeld(refused: readonly KafkaRecord[]): Promise<void> {
    const pipeline = this.client.pipeline();
    for (const record of refused) {
      const id = entryId(record.position);
      pipeline.call('XRANGE', [record.topic, id, id, 'COUNT', '1']);
      pipeline.call('XRANGE', [record.topic, '-', '+', 'COUNT', '1']);
    }
    const replies = await this.withTimeout(pipeline.exec());
    refused.forEach((record, index) => {
      const [foundError, found] = replies[2 * index] as [Error | null, unknown];
      const [firstError, first] = replies[2 * index + 1] as [Error | null, unknown];
      if (foundError || firstError) throw foundError ?? firstError;
      const firstId = (first as Array<[string, unknown]>)[0]?.[0];
      const verdict = refusalVerdict(record.topic, entryId(record.position), (found as unknown[]).length > 0, firstId);
      if (verdict) throw verdict;
    });
  }

  private async withTimeout<T>(reply: Promise<T | null>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`no reply within ${this.options.sendTimeoutMs} ms`)),
        this.options.sendTimeoutMs,
      );
    });
    try {
      const replies = await Promise.race([reply, timeout]);
      // ioredis answers null only for a MULTI aborted by WATCH, which the sink never sets.
      if (replies === null) throw new Error('transaction aborted');
      return replies;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Applies acks in send order: a pipeline answered before an earlier one waits for it. */
  private settle(): void {
    if (this.failure) return;
    while (this.pipelines.length > 0 && (this.pipelines[0] as Pipeline<Token>).done) {
      const { batch, bytes, started } = this.pipelines.shift() as Pipeline<Token>;
      for (const { token } of batch) this.events.acked(token);
      this.inflightRecords -= batch.length;
      this.inflightBytes -= bytes;
      this.events.onAcked?.(batch.length, bytes, performance.now() - started);
      // Redis answered the EXEC, so every byte of the pipeline was written: the records' bytes
      // can carry the records to come (wire-record.ts), as the Kafka sink's do once acked.
      for (const { record } of batch) releaseRecord(record);
    }
    this.wake();
    this.kick();
  }

  private failWith(failure: RelayError): void {
    if (this.failure) return;
    this.failure = failure;
    this.buffer.clear();
    this.pipelines = [];
    this.events.failed(failure);
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
