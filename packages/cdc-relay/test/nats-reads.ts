import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { type ConnectionOptions, connect } from '@nats-io/transport-node';

/** One message of a stream as a test reads it: its place, subject, headers, payload and id. */
export interface StreamMessage {
  seq: number;
  subject: string;
  headers: Map<string, string>;
  data: Buffer;
  /** Nats-Msg-Id. */
  msgId: string | undefined;
}

/** Messages in the stream now (0 when it does not exist). */
export async function streamCount(url: string, stream: string): Promise<number> {
  const nc = await connect({ servers: url, reconnect: false });
  try {
    const jsm = await jetstreamManager(nc);
    return await jsm.streams.info(stream).then(
      (info) => info.state.messages,
      () => 0,
    );
  } finally {
    await nc.close();
  }
}

/**
 * Every message of the stream, in stream order, read with an ordered consumer
 * on a connection of its own: the independent reader of the NATS tests.
 */
export async function readStream(
  url: string,
  stream: string,
  login: Partial<ConnectionOptions> = {},
): Promise<StreamMessage[]> {
  const nc = await connect({ servers: url, reconnect: false, ...login });
  try {
    const jsm = await jetstreamManager(nc);
    const { state } = await jsm.streams.info(stream);
    const out: StreamMessage[] = [];
    if (state.messages === 0) return out;
    const consumer = await jetstream(nc).consumers.get(stream);
    while (out.length < state.messages) {
      const batch = await consumer.fetch({
        max_messages: Math.min(5_000, state.messages - out.length),
        expires: 5_000,
      });
      let got = 0;
      for await (const m of batch) {
        got++;
        const headers = new Map<string, string>();
        for (const name of m.headers?.keys() ?? []) headers.set(name, m.headers?.get(name) ?? '');
        out.push({
          seq: m.seq,
          subject: m.subject,
          headers,
          data: Buffer.from(m.data),
          msgId: headers.get('Nats-Msg-Id'),
        });
      }
      if (got === 0) throw new Error(`stream ${stream}: read ${out.length} of ${state.messages} messages, then none`);
    }
    return out;
  } finally {
    await nc.close();
  }
}
