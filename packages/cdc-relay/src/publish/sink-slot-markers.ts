import type { RelayConfig } from '../config.ts';
import { natsSlotMarkers } from './nats-slot-marker.ts';
import { redisSlotMarkers } from './redis-slot-marker.ts';
import type { SlotMarkers } from './slot-marker.ts';

/** The sink's marker store; undefined for Kafka, whose checkpoints do this. */
export function slotMarkers(config: RelayConfig): SlotMarkers | undefined {
  switch (config.sink.kind) {
    case 'kafka':
      return undefined;
    case 'redis':
      return redisSlotMarkers(config.sink.url, config.kafkaSendTimeoutMs);
    case 'nats':
      return natsSlotMarkers(config.sink, config.kafkaSendTimeoutMs);
    default: {
      const unknown: never = config.sink;
      throw new Error(`unknown sink ${JSON.stringify(unknown)}`);
    }
  }
}
