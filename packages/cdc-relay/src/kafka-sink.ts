import type { Producer, TopicMessages } from 'kafkajs';
import type { AckTracker, TxToken } from './ack-tracker.ts';
import { RelayError } from './errors.ts';
import type { KafkaRecord } from './outbox-mapping.ts';

export interface KafkaSinkOptions {
  /** Most records in one produce request. */
  maxBatchRecords: number;
  /**
   * Most payload bytes in one produce request. The broker rejects a partition's
   * record batch above its message.max.bytes (1 MiB by default), and kafkajs puts
   * a request's records for one partition in one batch.
   */
  maxBatchBytes: number;
  /**
   * Longest wait for one produce request's ack. Past it the session fails and
   * replays from the slot with a new producer, instead of waiting on a producer
   * that may never recover.
   */
  sendTimeoutMs: number;
  /** How long a lone record waits for company before it is sent. */
  lingerMs: number;
  /** Records buffered or unacked before push() makes the WAL reader wait. */
  maxInflightRecords: number;
}

export interface SinkObserver {
  onAcked(records: number, bytes: number, latencyMs: number): void;
}

interface Pending {
  record: KafkaRecord;
  token: TxToken;
}

/**
 * Sends relayed records to Kafka with one produce request in flight at a time.
 *
 * One at a time is what keeps per-key order under retries: kafkajs retries a
 * failed send as a whole, and a second concurrent send could overtake it.
 * Throughput comes from batching instead: while a request is in flight, records
 * pile up and leave together in the next one.
 *
 * push() resolves only when the window has room, so a slow or absent broker
 * stops the WAL reader (backpressure) instead of growing memory.
 */
export class KafkaSink {
  private buffer: Pending[] = [];
  private sending = false;
  private lingerTimer: NodeJS.Timeout | null = null;
  private failure: RelayError | null = null;
  private roomWaiters: Array<() => void> = [];
  private drainWaiters: Array<() => void> = [];

  constructor(
    private readonly producer: Producer,
    private readonly tracker: AckTracker,
    private readonly options: KafkaSinkOptions,
    private readonly onFatal: (error: RelayError) => void,
    private readonly observer?: SinkObserver,
  ) {}

  async push(record: KafkaRecord, token: TxToken): Promise<void> {
    if (this.failure) throw this.failure;
    this.buffer.push({ record, token });
    if (this.buffer.length >= this.options.maxBatchRecords) this.kick();
    else this.scheduleLinger();
    while (this.tracker.inflightRecords >= this.options.maxInflightRecords) {
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
      while (this.buffer.length > 0 && !this.failure) {
        const batch = this.buffer.splice(0, this.batchLength());
        const started = performance.now();
        await this.sendWithTimeout(batch);
        if (this.failure) return;
        let bytes = 0;
        for (const { record, token } of batch) {
          this.tracker.ack(token);
          bytes += record.value?.length ?? 0;
        }
        this.observer?.onAcked(batch.length, bytes, performance.now() - started);
        this.wake();
      }
    } catch (cause) {
      this.failure = new RelayError('KAFKA_SEND_FAILED', `Kafka did not ack a batch: ${errorText(cause)}`, {
        retryable: true,
        cause,
      });
      this.buffer = [];
      this.onFatal(this.failure);
    } finally {
      this.sending = false;
      this.wake();
    }
  }

  private async sendWithTimeout(batch: readonly Pending[]): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`no ack within ${this.options.sendTimeoutMs} ms`)),
        this.options.sendTimeoutMs,
      );
    });
    try {
      await Promise.race([this.producer.sendBatch({ topicMessages: groupByTopic(batch), acks: -1 }), timeout]);
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
      bytes += (record.value?.length ?? 0) + (record.key?.length ?? 0);
      if (count > 0 && bytes > this.options.maxBatchBytes) break;
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

/** Keeps each topic's records in WAL order; Kafka orders per partition, i.e. per key. */
function groupByTopic(batch: readonly Pending[]): TopicMessages[] {
  const byTopic = new Map<string, TopicMessages>();
  for (const { record } of batch) {
    let entry = byTopic.get(record.topic);
    if (!entry) {
      entry = { topic: record.topic, messages: [] };
      byTopic.set(record.topic, entry);
    }
    entry.messages.push({ key: record.key, value: record.value, headers: record.headers });
  }
  return [...byTopic.values()];
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
