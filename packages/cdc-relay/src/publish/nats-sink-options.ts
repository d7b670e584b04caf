import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { type ConnectionOptions, connect, credsAuthenticator, type NatsConnection } from '@nats-io/transport-node';
import type { NatsAuth, RelayConfig } from '../config.ts';
import type { RelayError } from '../errors.ts';
import { toNatsFailure } from './nats-failures.ts';
import { type NatsLink, NatsSink, type NatsSinkOptions } from './nats-sink.ts';
import { ensureStream, neededSubjects } from './nats-stream.ts';
import type { RecordRules } from './record-rules.ts';
import type { SinkConnection } from './sink.ts';

/**
 * What a message's headers and the key header add to a record's size beyond
 * what the Kafka sizing counts: the server refuses a message whose headers
 * and payload exceed its max_payload.
 */
const HEADER_ALLOWANCE_BYTES = 1024;

/**
 * The live stream's NATS sink, on a fresh connection per session, as the
 * Kafka sink has a fresh producer. nats.js must not reconnect: it would
 * resend what it buffered while disconnected after the session may have
 * moved on, or drop it. A lost connection fails the sink instead, and the
 * session replays from the slot.
 */
export function natsStreamSink<Token>(config: RelayConfig): SinkConnection<Token> {
  const { sink } = config;
  if (sink.kind !== 'nats') throw new Error('natsStreamSink needs RELAY_SINK=nats');
  let connection: NatsConnection | undefined;
  let released = false;
  const lost: Array<(error: RelayError) => void> = [];
  let lostWith: RelayError | undefined;
  const ready = (async () => {
    try {
      connection = await connect({
        servers: sink.servers,
        name: `walnut-relay.${config.slot}`,
        reconnect: false,
        timeout: config.kafkaSendTimeoutMs,
        noEcho: true,
        ...authOptions(sink.auth),
      });
    } catch (cause) {
      throw toNatsFailure(cause, `a connection to ${sink.servers.join(', ')}`);
    }
    const nc = connection;
    void nc.closed().then((cause) => {
      if (released) return;
      lostWith = toNatsFailure(cause ?? new Error('connection closed'), 'its connection');
      for (const notify of lost.splice(0)) notify(lostWith);
    });
    try {
      await ensureStream(await jetstreamManager(nc), sink.stream, neededSubjects(config));
    } catch (cause) {
      throw toNatsFailure(cause, `stream ${sink.stream.name}`);
    }
    const rules: RecordRules = {
      publisher: 'stream',
      maxRecordBytes: Math.min(config.maxRecordBytes, (nc.info?.max_payload ?? 1_048_576) - HEADER_ALLOWANCE_BYTES),
      deadLetterTopic: config.deadLetterTopic,
    };
    return { js: jetstream(nc, { timeout: config.kafkaSendTimeoutMs }), rules };
  })();
  // start() reports it; until then, nobody else awaits it.
  ready.catch(() => {});
  const link: NatsLink = {
    ready,
    onLost: (notify) => {
      if (lostWith) notify(lostWith);
      else lost.push(notify);
    },
  };
  const options: NatsSinkOptions = {
    stream: sink.stream.name,
    sendTimeoutMs: config.kafkaSendTimeoutMs,
    maxInflightRecords: config.maxInflightRecords,
    maxInflightBytes: config.maxInflightBytes,
  };
  return {
    open: (events) => new NatsSink(link, options, events),
    release: async () => {
      released = true;
      await ready.catch(() => {});
      await connection?.close();
    },
  };
}

export function authOptions(auth: NatsAuth): Partial<ConnectionOptions> {
  switch (auth.kind) {
    case 'none':
      return {};
    case 'user':
      return { user: auth.user, pass: auth.password };
    case 'token':
      return { token: auth.token };
    case 'creds':
      return { authenticator: credsAuthenticator(new TextEncoder().encode(auth.creds)) };
    default: {
      const unknown: never = auth;
      throw new Error(`unknown NATS auth ${JSON.stringify(unknown)}`);
    }
  }
}
