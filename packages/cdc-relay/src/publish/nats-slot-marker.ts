import { createHash } from 'node:crypto';
import {
  JetStreamApiCodes,
  JetStreamApiError,
  type JetStreamManager,
  jetstream,
  jetstreamManager,
  StorageType,
} from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import type { NatsSettings } from '../config.ts';
import { toNatsFailure } from './nats-failures.ts';
import { authOptions } from './nats-sink-options.ts';
import { nextMarker, type SlotMarker, type SlotMarkers } from './slot-marker.ts';

/**
 * The marker as the last message of a subject in a small stream of its own,
 * WALNUT_RELAY_SLOTS (one message kept per subject: what a JetStream KV bucket
 * is underneath, without another client package). The subject is a hash of
 * the identity, which may hold characters a subject token may not.
 */
const STREAM = 'WALNUT_RELAY_SLOTS';
const PREFIX = 'walnut-relay-slots';
/** JetStream's answer to a stream added twice at once. */
const STREAM_NAME_IN_USE = 10058;

export function natsSlotMarkers(settings: NatsSettings, timeoutMs: number): SlotMarkers {
  const subject = (identity: string) => `${PREFIX}.${createHash('sha256').update(identity).digest('hex').slice(0, 32)}`;
  const read = (nc: NatsConnection, identity: string) => readMarker(nc, subject(identity), settings.stream.replicas);
  return {
    where: (identity) => `NATS stream ${STREAM}, subject ${subject(identity)}`,
    read: (identity) => withNats(settings, timeoutMs, (nc) => read(nc, identity)),
    write: (identity, facts) =>
      withNats(settings, timeoutMs, async (nc) => {
        const marker = nextMarker(await read(nc, identity), facts);
        await jetstream(nc, { timeout: timeoutMs }).publish(subject(identity), JSON.stringify(marker));
      }),
  };
}

async function readMarker(nc: NatsConnection, subject: string, replicas: number): Promise<SlotMarker | null> {
  const jsm = await jetstreamManager(nc);
  await ensureMarkerStream(jsm, replicas);
  try {
    const stored = await jsm.streams.getMessage(STREAM, { last_by_subj: subject });
    return stored ? (stored.json() as SlotMarker) : null;
  } catch (error) {
    if (error instanceof JetStreamApiError && error.code === JetStreamApiCodes.NoMessageFound) return null;
    throw error;
  }
}

async function ensureMarkerStream(jsm: JetStreamManager, replicas: number): Promise<void> {
  try {
    await jsm.streams.info(STREAM);
    return;
  } catch (error) {
    if (!(error instanceof JetStreamApiError && error.code === JetStreamApiCodes.StreamNotFound)) throw error;
  }
  try {
    await jsm.streams.add({
      name: STREAM,
      subjects: [`${PREFIX}.*`],
      max_msgs_per_subject: 1,
      storage: StorageType.File,
      num_replicas: replicas,
    });
  } catch (error) {
    // Made meanwhile by another relay: the same settings, nothing to do.
    if (!(error instanceof JetStreamApiError && error.code === STREAM_NAME_IN_USE)) throw error;
  }
}

async function withNats<T>(settings: NatsSettings, timeoutMs: number, use: (nc: NatsConnection) => Promise<T>) {
  let nc: NatsConnection | undefined;
  try {
    nc = await connect({
      servers: settings.servers,
      reconnect: false,
      timeout: timeoutMs,
      ...authOptions(settings.auth),
    });
    return await use(nc);
  } catch (cause) {
    throw toNatsFailure(cause, 'the slot marker');
  } finally {
    await nc?.close().catch(() => {});
  }
}
