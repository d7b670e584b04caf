import { kafkajsLogCreator } from '@walnut/runtime';
import { childSpan } from '@walnut/schema';
import type { NodePgDatabase } from 'drizzle-orm/node-postgres';
import {
  type Admin,
  type Consumer,
  type EachBatchPayload,
  Kafka,
  type KafkaMessage,
  logLevel,
  Partitioners,
  type Producer,
} from 'kafkajs';
import type { Logger } from 'pino';
import { applyBatch, VISIBILITY_WAIT_MAX_MS } from './apply-batch.ts';
import { ApplyGroup } from './apply-group.ts';
import { ApplierError } from './errors.ts';
import { type DecodedKvEvent, decodeKvMessage } from './kv-message.ts';
import type { ApplierMetrics } from './metrics.ts';
import { OffsetCommitter } from './offset-committer.ts';

/**
 * Most events in one shared apply: a catch-up fetch brings up to 1 MiB per
 * partition, and one statement's JSON stays a few MiB at most.
 */
const MAX_EVENTS_PER_APPLY = 5_000;

export interface ApplierOptions {
  brokers: string[];
  topic: string;
  dlqTopic: string;
  groupId: string;
  topicPartitions: number;
  /** Least time between two offset commits (see OffsetCommitter). */
  offsetCommitIntervalMs: number;
}

/**
 * A consumer group member that applies KV events to `kvs`. Offsets are
 * committed only after the batch's database transaction has committed (by the
 * OffsetCommitter, beside the loop), so a crash replays at most the batches
 * since the last offset commit, which the version guard absorbs.
 */
export class Applier {
  private readonly kafka: Kafka;
  private readonly consumer: Consumer;
  private readonly dlq: Producer;
  private readonly admin: Admin;
  private consuming = false;
  private readonly offsets: OffsetCommitter;
  private readonly applies: ApplyGroup;

  constructor(
    private readonly db: NodePgDatabase,
    private readonly options: ApplierOptions,
    private readonly log: Logger,
    /** A failure the applier cannot recover from; main.ts logs it and exits. */
    private readonly onFatal: (error: ApplierError) => void,
    private readonly metrics?: ApplierMetrics,
  ) {
    this.kafka = new Kafka({
      clientId: 'walnut-applier',
      brokers: options.brokers,
      logLevel: logLevel.WARN,
      logCreator: kafkajsLogCreator(log),
    });
    // read_committed (kafkajs's default, spelled out): records of aborted Kafka transactions
    // (from any producer of the topic) are never applied.
    this.consumer = this.kafka.consumer({ groupId: options.groupId, readUncommitted: false });
    this.dlq = this.kafka.producer({ idempotent: true, createPartitioner: Partitioners.DefaultPartitioner });
    this.admin = this.kafka.admin();
    this.offsets = new OffsetCommitter(
      (offsets) => this.consumer.commitOffsets(offsets),
      (error) => this.log.warn({ err: error }, 'offset commit failed; retrying (a crash now replays, harmlessly)'),
      1_000,
      options.offsetCommitIntervalMs,
    );
    this.applies = new ApplyGroup((events) => this.applyEvents(events), { maxEventsPerApply: MAX_EVENTS_PER_APPLY });
  }

  /** True between the consumer's start and stop (kafkajs restarts it after retriable crashes). */
  get healthy(): boolean {
    return this.consuming;
  }

  /**
   * Records between the group's committed offset and the end of each partition,
   * read from Kafka (not from the last batch seen), so a stuck applier shows lag.
   */
  async readLag(): Promise<Array<{ partition: number; lag: number }>> {
    const { topic, groupId } = this.options;
    const [ends, committed] = await Promise.all([
      this.admin.fetchTopicOffsets(topic),
      this.admin.fetchOffsets({ groupId, topics: [topic] }),
    ]);
    const committedBy = new Map(committed[0]?.partitions.map((p) => [p.partition, Number(p.offset)]) ?? []);
    return ends.map(({ partition, high, low }) => {
      const at = committedBy.get(partition) ?? -1;
      // -1: nothing committed yet; the group starts from the earliest offset.
      return { partition, lag: Number(high) - (at < 0 ? Number(low) : at) };
    });
  }

  async start(): Promise<void> {
    await this.admin.connect();
    await this.ensureTopics();
    await this.dlq.connect();
    this.consumer.on(this.consumer.events.CRASH, ({ payload }) => {
      // kafkajs restarts the consumer after a retriable crash; anything else
      // leaves it stopped, and a stopped applier must not look alive.
      if (!payload.restart) {
        this.consuming = false;
        this.onFatal(
          new ApplierError('CONSUMER_CRASHED', 'the Kafka consumer crashed and will not restart', {
            retryable: false,
            cause: payload.error,
          }),
        );
      }
    });
    await this.consumer.connect();
    await this.consumer.subscribe({ topics: [this.options.topic], fromBeginning: true });
    await this.consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      // Partitions are independent (a key lives on one): apply them side by side
      // rather than one after another within each fetch.
      partitionsConsumedConcurrently: this.options.topicPartitions,
      eachBatch: (payload) => this.onBatch(payload),
    });
    this.consuming = true;
    this.log.info({ topic: this.options.topic, groupId: this.options.groupId }, 'applier consuming');
  }

  async stop(): Promise<void> {
    this.consuming = false;
    // Before disconnecting: a stopped kafkajs consumer drops offset commits.
    // A batch still applying now is replayed by the next member, harmlessly.
    await this.offsets.flush();
    await this.consumer.disconnect();
    await this.dlq.disconnect();
    await this.admin.disconnect();
  }

  private async onBatch({ batch, resolveOffset, heartbeat, isRunning, isStale }: EachBatchPayload): Promise<void> {
    if (batch.messages.length === 0 || !isRunning() || isStale()) return;
    const stopTimer = this.metrics?.batchSeconds.startTimer();
    const events: DecodedKvEvent[] = [];
    const poison: Array<{ message: KafkaMessage; error: string }> = [];
    for (const message of batch.messages) {
      const decoded = decodeKvMessage(message);
      if (decoded.ok) events.push(decoded.value);
      else poison.push({ message, error: decoded.error });
    }
    if (poison.length > 0) {
      // Dead-lettered before the offset moves: a poison record is never just dropped.
      await this.dlq.send({
        topic: this.options.dlqTopic,
        acks: -1,
        messages: poison.map(({ message, error }) => ({
          key: message.key,
          value: message.value,
          headers: {
            ...message.headers,
            'walnut-dlq-error': error,
            'walnut-dlq-source': `${batch.topic}/${batch.partition}/${message.offset}`,
          },
        })),
      });
      this.metrics?.deadLettered.inc(poison.length);
      this.log.error({ count: poison.length, first: poison[0]?.error }, 'dead-lettered poison records');
    }
    if (events.length > 0) await this.applies.submit(events);
    const last = batch.lastOffset();
    resolveOffset(last);
    this.offsets.applied({ topic: batch.topic, partition: batch.partition, offset: (BigInt(last) + 1n).toString() });
    await heartbeat();
    for (const { event } of events) this.metrics?.eventsApplied.inc({ op: event.op });
    if (this.log.isLevelEnabled('debug')) this.logSpans(events, batch.partition);
    stopTimer?.();
  }

  /** One transaction for the batches of one fetch (see ApplyGroup). */
  private async applyEvents(events: readonly DecodedKvEvent[]): Promise<void> {
    const result = await applyBatch(this.db, events);
    if (result.visibilityWaitMs >= VISIBILITY_WAIT_MAX_MS) {
      this.log.warn(
        { waitedMs: result.visibilityWaitMs },
        'writing transactions still invisible after the wait; some requests may stay unmarked',
      );
    }
    this.metrics?.requestsApplied.inc(result.marked);
  }

  /**
   * One line per applied event, as a span of the writer's trace (W3C ids, so a
   * log search for the trace id an HTTP caller got back finds it). Debug level:
   * at thousands of events a second it is a firehose.
   */
  private logSpans(events: readonly DecodedKvEvent[], partition: number): void {
    for (const { event, trace } of events) {
      const span = childSpan(trace);
      this.log.debug(
        {
          trace_id: span.traceId,
          span_id: span.spanId,
          parent_span_id: span.parentSpanId,
          key: event.key,
          op: event.op,
          request_id: event.request_id,
          partition,
        },
        'event applied',
      );
    }
  }

  private async ensureTopics(): Promise<void> {
    await this.admin.createTopics({
      waitForLeaders: true,
      topics: [
        { topic: this.options.topic, numPartitions: this.options.topicPartitions },
        { topic: this.options.dlqTopic, numPartitions: 1 },
      ],
    });
  }
}
