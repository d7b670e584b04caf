import type { CheckpointIdentity } from '../checkpoint/checkpoint.ts';
import type { RelayConfig } from '../config.ts';
import { kafkaStreamSink } from './kafka-sink-options.ts';
import { natsStreamSink } from './nats-sink-options.ts';
import { redisStreamSink } from './redis-sink-options.ts';
import type { SinkConnection } from './sink.ts';

/** The live stream's sink, as RELAY_SINK says: what relay.ts asks for, naming no implementation. */
export function streamSink<Token>(
  config: RelayConfig,
  slot: { transactionalId: string; checkpoint: CheckpointIdentity },
): SinkConnection<Token> {
  switch (config.sink.kind) {
    case 'kafka':
      return kafkaStreamSink(config, slot);
    case 'redis':
      return redisStreamSink(config);
    case 'nats':
      return natsStreamSink(config);
    default: {
      const unknown: never = config.sink;
      throw new Error(`unknown sink ${JSON.stringify(unknown)}`);
    }
  }
}
