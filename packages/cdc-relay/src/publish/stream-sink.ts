import type { CheckpointIdentity } from '../checkpoint/checkpoint.ts';
import type { RelayConfig } from '../config.ts';
import { kafkaStreamSink } from './kafka-sink-options.ts';
import type { SinkConnection } from './sink.ts';

/**
 * The live stream's sink, as RELAY_SINK says: what relay.ts asks for, naming no implementation.
 * The Redis and NATS sinks are loaded when first asked for, so that a relay sending to Kafka
 * never loads their clients: about 700 kB of source that an idle sidecar would hold.
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
