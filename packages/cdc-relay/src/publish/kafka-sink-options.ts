import type { CheckpointIdentity } from '../checkpoint/checkpoint.ts';
import type { RelayConfig } from '../config.ts';
import { closeForcibly, createProducer } from '../kafka-producer.ts';
import type { TransactionMode } from './kafka-requests.ts';
import { KafkaSink } from './kafka-sink.ts';
import type { RecordRules } from './record-rules.ts';
import type { SinkConnection } from './sink.ts';

export interface KafkaSinkOptions extends RecordRules {
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
   * only when it is full (maxBatchRecords or maxBatchBytes, or its group's
   * end); a partial batch waits for the requests ahead of it, gathering more
   * records meanwhile.
   */
  maxRequestsInFlight: number;
  /**
   * Longest wait for one produce request's ack (or a transaction's commit).
   * Past it the stream's session fails and replays from the slot with a new
   * producer, whose epoch fences this one.
   */
  sendTimeoutMs: number;
  /** How long a lone record waits for company before it is sent. */
  lingerMs: number;
  /** Records buffered or unacked before push() makes the caller wait. */
  maxInflightRecords: number;
  /** Encoded bytes buffered or unacked before push() makes the caller wait. */
  maxInflightBytes: number;
  transactions: TransactionMode;
  /**
   * The stream's checkpoints (see checkpoint.ts): where they go, and the least
   * time between two. Unset: none (replay and snapshot).
   */
  checkpoint: { identity: CheckpointIdentity; intervalMs: number } | undefined;
}

/** The settings every publisher shares: one batcher, one size rule, one dead-letter rule. */
function shared(config: RelayConfig) {
  return {
    maxBatchRecords: config.maxBatchRecords,
    maxBatchBytes: config.maxBatchBytes,
    maxRequestsInFlight: config.maxRequestsInFlight,
    maxRecordBytes: config.maxRecordBytes,
    deadLetterTopic: config.deadLetterTopic,
    sendTimeoutMs: config.kafkaSendTimeoutMs,
    lingerMs: config.lingerMs,
    maxInflightRecords: config.maxInflightRecords,
    maxInflightBytes: config.maxInflightBytes,
  };
}

/**
 * The live stream's sink, on a fresh producer per session, never reused after a
 * failed one: the session replays everything unconfirmed from the slot, and the
 * new producer's epoch (its transactional id is the slot's) fences whatever the
 * old one still has in flight (see kafka-producer.ts). Exactly-once makes each
 * request one transaction with its checkpoint.
 */
export function kafkaStreamSink<Token>(
  config: RelayConfig,
  slot: { transactionalId: string; checkpoint: CheckpointIdentity },
): SinkConnection<Token> {
  const producer = createProducer(config.kafka, {
    transactionalId: slot.transactionalId,
    requestTimeoutMs: config.kafkaSendTimeoutMs,
    maxRequestsInFlight: config.maxRequestsInFlight,
  });
  const options: KafkaSinkOptions = {
    ...shared(config),
    publisher: 'stream',
    transactions: config.delivery === 'exactly-once' ? 'per-request' : 'none',
    checkpoint: { identity: slot.checkpoint, intervalMs: config.checkpointIntervalMs },
  };
  return { open: (events) => new KafkaSink(producer, options, events), release: () => closeForcibly(producer) };
}

/**
 * Replay's and snapshot's sink: transactions of the pages the run seals
 * together, no checkpoints. Its producer's transactional id is the replay's
 * own, so a resumed run's fence stops a killed or frozen one (REPLAY_FENCED).
 */
export function replaySink<Token>(config: RelayConfig, replayId: string): SinkConnection<Token> {
  const producer = createProducer(config.kafka, {
    transactionalId: `walnut-replay.${replayId}`,
    requestTimeoutMs: config.kafkaSendTimeoutMs,
    maxRequestsInFlight: config.maxRequestsInFlight,
  });
  const options: KafkaSinkOptions = {
    ...shared(config),
    publisher: 'replay',
    transactions: 'sealed',
    checkpoint: undefined,
  };
  return { open: (events) => new KafkaSink(producer, options, events), release: () => closeForcibly(producer) };
}
