import type { RelayConfig } from '../config.ts';
import type { SlotMarkers } from './slot-marker.ts';

/**
 * The sink's marker store; undefined for Kafka, whose checkpoints do this. Imported on first use,
 * like the sinks themselves (stream-sink.ts): a Kafka relay loads no Redis or NATS client.
 */
export async function slotMarkers(config: RelayConfig): Promise<SlotMarkers | undefined> {
  switch (config.sink.kind) {
    case 'kafka':
      return undefined;
    case 'redis':
      return (await import('./redis-slot-marker.ts')).redisSlotMarkers(config.sink.url, config.kafkaSendTimeoutMs);
    case 'nats':
      return (await import('./nats-slot-marker.ts')).natsSlotMarkers(config.sink, config.kafkaSendTimeoutMs);
    default: {
      const unknown: never = config.sink;
      throw new Error(`unknown sink ${JSON.stringify(unknown)}`);
    }
  }
}
