import { Redis } from 'ioredis';
import type { RelayConfig } from '../config.ts';
import type { RecordRules } from './record-rules.ts';
import { RedisSink } from './redis-sink.ts';
import type { SinkConnection } from './sink.ts';

export interface RedisSinkOptions extends RecordRules {
  /** Most XADDs in one pipeline (RELAY_MAX_BATCH_RECORDS). */
  maxBatchRecords: number;
  /** Most encoded bytes in one pipeline (RELAY_MAX_BATCH_BYTES). */
  maxBatchBytes: number;
  /** Batches in flight at once; beyond the first, only full ones. The stream sink uses 1 (see redisStreamSink). */
  maxRequestsInFlight: number;
  /** Longest wait for a pipeline's replies before the session restarts (RELAY_KAFKA_SEND_TIMEOUT_MS). */
  sendTimeoutMs: number;
  lingerMs: number;
  maxInflightRecords: number;
  maxInflightBytes: number;
  /** XADD MAXLEN ~ this (RELAY_REDIS_MAXLEN); undefined: no trimming. */
  maxLen: number | undefined;
}

/**
 * The live stream's Redis sink, on a fresh connection per session, as the
 * Kafka sink has a fresh producer. The client must not reconnect, queue
 * commands while disconnected, or resend them after a reconnect: each of those
 * could land an XADD after ones pushed later. A lost connection fails the
 * sink instead, and the session replays from the slot.
 */
export function redisStreamSink<Token>(config: RelayConfig): SinkConnection<Token> {
  const { sink } = config;
  if (sink.kind !== 'redis') throw new Error('redisStreamSink needs RELAY_SINK=redis');
  const client = new Redis(sink.url, {
    lazyConnect: true,
    enableOfflineQueue: false,
    autoResendUnfulfilledCommands: false,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    connectTimeout: config.kafkaSendTimeoutMs,
    connectionName: `walnut-relay.${config.slot}`,
  });
  // Failures reach the sink through its commands; without a listener ioredis would also print them.
  client.on('error', () => {});
  const options: RedisSinkOptions = {
    publisher: 'stream',
    maxRecordBytes: config.maxRecordBytes,
    deadLetterTopic: config.deadLetterTopic,
    maxBatchRecords: config.maxBatchRecords,
    maxBatchBytes: config.maxBatchBytes,
    // One batch at a time, whatever RELAY_MAX_REQUESTS_IN_FLIGHT says: Redis would run a batch sent
    // behind one that failed (OOM, a dropped connection), and its entries would land past a gap
    // that the resend could not fill. A batch is up to RELAY_MAX_BATCH_RECORDS XADDs, and records
    // arriving meanwhile gather for the next one.
    maxRequestsInFlight: 1,
    sendTimeoutMs: config.kafkaSendTimeoutMs,
    lingerMs: config.lingerMs,
    maxInflightRecords: config.maxInflightRecords,
    maxInflightBytes: config.maxInflightBytes,
    maxLen: sink.maxLen,
  };
  return {
    open: (events) => new RedisSink(client, options, events),
    release: async () => client.disconnect(),
  };
}
