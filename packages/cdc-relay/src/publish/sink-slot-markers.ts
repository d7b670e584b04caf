import type { RelayConfig } from '../config.ts';
import type { SlotMarkers } from './slot-marker.ts';

/**
 * The sink's marker store; undefined for Kafka, whose checkpoints do this. Loaded when
 * first asked for, as the sinks are (stream-sink.ts).
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
