/**
 * NATS JetStream as a bench sink: a private nats-server (the stack's startNats: JetStream with
 * file storage), the relay pointed at it with RELAY_SINK=nats, and its limit measured by a
 * JetStream publish loop in this process with the client the relay uses (nats.js): there is no
 * `nats bench` here, the `nats` CLI not being a Debian package.
 */
import path from 'node:path';
import {
  JetStreamApiCodes,
  JetStreamApiError,
  type JetStreamManager,
  jetstream,
  jetstreamManager,
  StorageType,
} from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { startNats } from '@walnut/stack';
import type { BenchSink, SinkLimit } from './sinks.ts';

/** The stream each drain's relay creates (RELAY_NATS_STREAM); dropped before and after each drain. */
const DRAIN_STREAM = 'BENCH_DRAIN';
/**
 * Publishes awaiting their PubAck at once, as the relay's window holds them for 1 KB rows: it
 * pauses at RELAY_MAX_INFLIGHT_BYTES (16 MiB) before RELAY_MAX_INFLIGHT_RECORDS (20,000).
 */
const RELAY_LIKE_WINDOW_BYTES = 16 * 1024 * 1024;
const RELAY_WINDOW_RECORDS = 20_000;
/** The relay's RELAY_KAFKA_SEND_TIMEOUT_MS default, its longest wait for a PubAck. */
const PUBACK_TIMEOUT_MS = 30_000;
/**
 * nats-server 2.9 fsyncs a file store every 2 minutes and has no setting for it (sync_interval
 * came in 2.10; 2.9.10 refuses it as an unknown field): what a PubAck means on a machine crash.
 */
const SYNC = 'fsync every 2 min';

export async function startNatsSink(dir: string, log: (line: string) => void): Promise<BenchSink> {
  const nats = await startNats({ dir: path.join(dir, 'nats'), log });
  let nc: Awaited<ReturnType<typeof connect>>;
  try {
    nc = await connect({ servers: nats.url, name: 'walnut-bench', noEcho: true });
  } catch (error) {
    await nats.stop();
    throw error;
  }
  const jsm = await jetstreamManager(nc);
  const js = jetstream(nc, { timeout: PUBACK_TIMEOUT_MS });
  const durability = `file storage, ${SYNC}`;
  // The version from the server's greeting, so the report says what this run had.
  const version = nc.info?.version ?? 'unknown';
  const server = `nats-server ${version}, JetStream ${durability} (2.9's fixed default: no sync_interval setting before 2.10), 1 replica`;
  log(`NATS JetStream sink: ${server}`);

  let limits = 0;
  const publishes = async (records: number, recordBytes: number, asTheRelay: boolean): Promise<SinkLimit> => {
    // Each run on a stream of its own, so an earlier run's messages and ids do not weigh on it.
    const stream = `BENCH_LIMIT_${++limits}`;
    const subject = `bench.limit-${limits}`;
    await jsm.streams.add({ name: stream, subjects: [subject], storage: StorageType.File, num_replicas: 1 });
    try {
      const window = Math.min(RELAY_WINDOW_RECORDS, Math.floor(RELAY_LIKE_WINDOW_BYTES / recordBytes));
      const payload = new Uint8Array(recordBytes).fill(120);
      const started = performance.now();
      await new Promise<void>((resolve, reject) => {
        let sent = 0;
        let acked = 0;
        let inflight = 0;
        let lastId: string | undefined;
        const pump = () => {
          while (inflight < window && sent < records) {
            const id = `bench-${sent++}`;
            inflight++;
            // As the relay: a Nats-Msg-Id for the duplicate window, chained on the previous one's.
            const options = asTheRelay
              ? { msgID: id, expect: { streamName: stream, ...(lastId ? { lastMsgID: lastId } : {}) } }
              : {};
            lastId = id;
            js.publish(subject, payload, options).then(() => {
              inflight--;
              if (++acked === records) resolve();
              else pump();
            }, reject);
          }
        };
        pump();
      });
      const seconds = (performance.now() - started) / 1000;
      const rate = records / seconds;
      const settings = asTheRelay ? 'msgID and expected last msgID set, as the relay' : 'no msgID, no expectations';
      return {
        tool: `nats.js JetStream publish loop, ${window} publishes in flight, ${settings}, ${records} × ${recordBytes} B`,
        recordsPerSecond: rate,
        line: `${Math.round(rate)} publishes/s (${records} PubAcks in ${seconds.toFixed(2)} s)`,
      };
    } finally {
      await jsm.streams.delete(stream);
    }
  };

  return {
    name: 'NATS JetStream',
    server,
    durability,
    about: `The relay (\`RELAY_SINK=nats\`, its defaults otherwise) publishes one JetStream message per row with a Nats-Msg-Id (commit LSN-position: JetStream's duplicate window drops a resend), the row's key and six headers, each publish expecting the previous one's id as the stream's last (Nats-Expected-Last-Msg-Id), all on one connection with up to ${RELAY_WINDOW_RECORDS.toLocaleString('en-US')} records or 16 MiB awaiting their PubAck, and counts a row once its PubAck and every earlier one have come. The stream (\`${DRAIN_STREAM}\`, file storage, one replica) is created by the relay and deleted before and after each drain. The limit is a publish loop in the bench's own process with the same client (nats.js 3.4.0; no \`nats bench\` here): as many publishes of 1 KB with as many awaiting their PubAck as the relay's window holds, each with a Nats-Msg-Id and chained like the relay's, but no headers. Beside it, labelled, the same without ids or expectations: not the limit. A PubAck means the message is written to nats-server's file store: it survives a SIGKILL of nats-server, but nats-server 2.9 fsyncs every 2 minutes, so a machine crash can lose what it acked since.`,
    relayEnv: {
      RELAY_SINK: 'nats',
      NATS_SERVERS: nats.url,
      RELAY_NATS_STREAM: DRAIN_STREAM,
      RELAY_NATS_STORAGE: 'file',
    },
    // The relay creates the stream for the drain's subjects; one left by an earlier drain would not capture them.
    prepare: () => dropStream(jsm, DRAIN_STREAM),
    forget: async (topic) => {
      const info = await jsm.streams.info(DRAIN_STREAM).catch(() => undefined);
      if (info)
        log(`  ${DRAIN_STREAM} held ${info.state.messages} messages on ${topic} (${info.config.storage} storage)`);
      await dropStream(jsm, DRAIN_STREAM);
    },
    async limit(records: number, recordBytes: number): Promise<SinkLimit[]> {
      return [await publishes(records, recordBytes, true), await publishes(records, recordBytes, false)];
    },
    stop: async () => {
      await nc.close();
      await nats.stop();
    },
  };
}

async function dropStream(jsm: JetStreamManager, name: string): Promise<void> {
  try {
    await jsm.streams.delete(name);
  } catch (error) {
    if (!(error instanceof JetStreamApiError && error.code === JetStreamApiCodes.StreamNotFound)) throw error;
  }
}
