import type { CheckpointIdentity } from '../checkpoint/checkpoint.ts';
import type { RelayConfig } from '../config.ts';
import { kafkaStreamSink } from './kafka-sink-options.ts';
import type { SinkConnection } from './sink.ts';

/**
 * The live stream's sink, as RELAY_SINK says: what relay.ts asks for, naming no implementation.
 * Redis's and NATS's clients are imported here, on first use, not at start: a Kafka sidecar never
 * parses or runs ioredis or nats.js (its idle memory and start-up time are targets; the bundle
 * keeps them in chunks of their own).
 */
export async function streamSink<Token>(
  config: RelayConfig,
  slot: { transactionalId: string; checkpoint: CheckpointIdentity },
): Promise<SinkConnection<Token>> {
  switch (config.sink.kind) {
    case 'kafka':
      return kafkaStreamSink(config, slot);
    case 'redis':
      return (await import('./redis-sink-options.ts')).redisStreamSink(config);
    case 'nats':
      return (await import('./nats-sink-options.ts')).natsStreamSink(config);
    default: {
      const unknown: never = config.sink;
      throw new Error(`unknown sink ${JSON.stringify(unknown)}`);
    }
  }
}
