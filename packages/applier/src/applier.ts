import type { NodePgDatabase } from 'drizzle-orm/node-postgres';
import { type Consumer, type EachBatchPayload, Kafka, logLevel, Partitioners, type Producer } from 'kafkajs';
import type { Logger } from 'pino';
import { applyBatch } from './apply-batch.ts';
import { type DecodedKvEvent, decodeKvMessage } from './kv-message.ts';

export interface ApplierOptions {
  brokers: string[];
  topic: string;
  dlqTopic: string;
  groupId: string;
  topicPartitions: number;
}

/**
 * A consumer group member that applies KV events to `kvs`. Offsets are
 * committed only after the batch's database transaction has committed, so a
 * crash replays at most the batch in progress, which the version guard absorbs.
 */
export class Applier {
  private readonly kafka: Kafka;
  private readonly consumer: Consumer;
  private readonly dlq: Producer;

  constructor(
    private readonly db: NodePgDatabase,
    private readonly options: ApplierOptions,
    private readonly log: Logger,
  ) {
    this.kafka = new Kafka({
      clientId: 'walnut-applier',
      brokers: options.brokers,
      logLevel: logLevel.WARN,
      logCreator: () => (entry) => {
        const { message, ...rest } = entry.log;
        this.log.warn({ kafka: rest, namespace: entry.namespace }, message);
      },
    });
    this.consumer = this.kafka.consumer({ groupId: options.groupId });
    this.dlq = this.kafka.producer({ idempotent: true, createPartitioner: Partitioners.DefaultPartitioner });
  }

  async start(): Promise<void> {
    await this.ensureTopics();
    await this.dlq.connect();
    this.consumer.on(this.consumer.events.CRASH, ({ payload }) => {
      // kafkajs restarts the consumer after a retriable crash; anything else
      // leaves it stopped, and a stopped applier must not look alive.
      if (!payload.restart) {
        this.log.fatal({ err: payload.error }, 'consumer crashed and will not restart');
        process.exit(1);
      }
    });
    await this.consumer.connect();
    await this.consumer.subscribe({ topics: [this.options.topic], fromBeginning: true });
    await this.consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      eachBatch: (payload) => this.onBatch(payload),
    });
    this.log.info({ topic: this.options.topic, groupId: this.options.groupId }, 'applier consuming');
  }

  async stop(): Promise<void> {
    await this.consumer.disconnect();
    await this.dlq.disconnect();
  }

  private async onBatch({ batch, resolveOffset, heartbeat, isRunning, isStale }: EachBatchPayload): Promise<void> {
    if (batch.messages.length === 0 || !isRunning() || isStale()) return;
    const events: DecodedKvEvent[] = [];
    const poison = [];
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
      this.log.error({ count: poison.length, first: poison[0]?.error }, 'dead-lettered poison records');
    }
    await applyBatch(this.db, events);
    const last = batch.lastOffset();
    resolveOffset(last);
    await this.consumer.commitOffsets([
      { topic: batch.topic, partition: batch.partition, offset: (BigInt(last) + 1n).toString() },
    ]);
    await heartbeat();
  }

  private async ensureTopics(): Promise<void> {
    const admin = this.kafka.admin();
    await admin.connect();
    try {
      await admin.createTopics({
        waitForLeaders: true,
        topics: [
          { topic: this.options.topic, numPartitions: this.options.topicPartitions },
          { topic: this.options.dlqTopic, numPartitions: 1 },
        ],
      });
    } finally {
      await admin.disconnect();
    }
  }
}
