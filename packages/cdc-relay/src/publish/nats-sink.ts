import type { JetStreamClient, StreamExpectations } from '@nats-io/jetstream';
import { Empty, type MsgHdrs } from '@nats-io/transport-node';
import type { RelayError } from '../errors.ts';
import type { KafkaRecord } from '../kafka-record.ts';
import { releaseRecord } from '../wire-record.ts';
import { isStaleChain, toNatsFailure } from './nats-failures.ts';
import { messageHeaders, messageId } from './nats-messages.ts';
import { fitOrDeadLetter, type RecordRules } from './record-rules.ts';
import type { RecordSink, SinkEvents } from './sink.ts';

/** The session's connection as a sink uses it (nats-sink-options.ts makes it). */
export interface NatsLink {
  /** Connected, and the stream is there capturing the records' subjects. */
  ready: Promise<{ js: JetStreamClient; rules: RecordRules }>;
  /** Calls `lost` once if the connection ends before release (nats.js does not reconnect here). */
  onLost(lost: (error: RelayError) => void): void;
}

export interface NatsSinkOptions {
  /** The stream every record must land in (Nats-Expected-Stream). */
  stream: string;
  /** Longest wait for a PubAck before the session restarts (RELAY_KAFKA_SEND_TIMEOUT_MS). */
  sendTimeoutMs: number;
  maxInflightRecords: number;
  maxInflightBytes: number;
}

/** A message published and not yet acked to the caller, in push order. */
interface InFlight<Token> {
  record: KafkaRecord;
  token: Token;
  id: string;
  started: number;
  /** Which publish of it counts: a restarted chain (see restartChain) publishes it again. */
  attempt: number;
  done: boolean;
}

/**
 * The NATS JetStream sink: one JetStream publish per record, all in flight at
 * once up to the window, acked to the caller in push order once the PubAck of
 * the record and of every one before it has come (a PubAck marked duplicate
 * counts: the stream holds the message).
 *
 * Order. One connection, and nats-server stores one connection's messages to
 * a stream in the order they came. But one publish can fail while later ones
 * land (a message over the stream's max_msg_size, a store error), and the
 * resend of the next session would put it after them. So each publish expects
 * the previous one's Nats-Msg-Id as the stream's last (Nats-Expected-Last-Msg-Id):
 * once one fails, every later one is refused, and nothing lands past the gap.
 * The first publish of a session expects nothing: everything before it in the
 * stream is acked, or the slot would have streamed it first. nats-server
 * answers a duplicate before it checks the expectation, so a resend of
 * messages the stream holds goes through (checked on nats-server 2.9.10).
 *
 * A duplicate does not move the stream's last id, so a publish chained to one
 * is refused although nothing is missing: when a refused publish's
 * predecessors are all acked, the chain restarts at it (restartChain).
 *
 * The client does not reconnect (nats-sink-options.ts): a lost connection
 * fails the sink, and the stream's next session replays from the slot.
 */
export class NatsSink<Token> implements RecordSink<Token> {
  private js: JetStreamClient | undefined;
  private rules: RecordRules | undefined;
  private inflight: Array<InFlight<Token>> = [];
  private inflightBytes = 0;
  /** Nats-Msg-Id of the last message published; undefined when the next may go unchained. */
  private lastId: string | undefined;
  private failure: RelayError | null = null;
  private roomWaiters: Array<() => void> = [];
  private drainWaiters: Array<() => void> = [];

  constructor(
    private readonly link: NatsLink,
    private readonly options: NatsSinkOptions,
    private readonly events: SinkEvents<Token>,
  ) {}

  async start(): Promise<void> {
    const { js, rules } = await this.link.ready;
    this.js = js;
    this.rules = rules;
    this.link.onLost((error) => this.failWith(error));
  }

  get bufferedBytes(): number {
    return this.inflightBytes;
  }

  push(record: KafkaRecord, token: Token): Promise<void> | undefined {
    if (this.failure) throw this.failure;
    if (!this.rules) throw new Error('NatsSink.push before start');
    const sendable = fitOrDeadLetter(record, this.rules);
    const entry: InFlight<Token> = {
      record: sendable,
      token,
      id: messageId(sendable.position),
      started: performance.now(),
      attempt: 0,
      done: false,
    };
    this.inflight.push(entry);
    this.inflightBytes += sendable.sizeBytes;
    this.publish(entry);
    this.events.onSent?.(this.inflight.length);
    if (!this.full()) return undefined;
    return this.room();
  }

  /** Each publish is durable (or not) on its own: there is no unit to seal. */
  seal(): void {}

  async drain(timeoutMs?: number): Promise<boolean> {
    if (this.idle() || this.failure) return this.idle();
    let timer: NodeJS.Timeout | undefined;
    const drained = new Promise<true>((resolve) => this.drainWaiters.push(() => resolve(true)));
    if (timeoutMs === undefined) return drained;
    const timedOut = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), timeoutMs);
    });
    try {
      return await Promise.race([drained, timedOut]);
    } finally {
      clearTimeout(timer);
    }
  }

  close(): void {
    this.failure ??= toNatsFailure(new Error('sink closed'), 'its publishes');
    this.inflight = [];
    this.wake();
  }

  private publish(entry: InFlight<Token>): void {
    const js = this.js as JetStreamClient;
    const { record } = entry;
    const expect: Partial<StreamExpectations> = { streamName: this.options.stream };
    const chained = this.lastId !== undefined;
    if (this.lastId !== undefined) expect.lastMsgID = this.lastId;
    this.lastId = entry.id;
    const attempt = entry.attempt;
    let headers: MsgHdrs;
    try {
      // Fresh each time: nats.js adds Nats-Msg-Id and the expectations to the object it is given.
      headers = messageHeaders(record);
    } catch (cause) {
      // A header value nats.js refuses (CR or LF) can never be sent: stop, naming the row.
      this.failWith(toNatsFailure(cause, `the headers of ${record.source}`, { retryable: false }));
      return;
    }
    // nats.js writes the request to the connection before publish() first awaits, so
    // messages leave in push order.
    js.publish(record.topic, record.value ?? Empty, {
      msgID: entry.id,
      headers,
      expect,
      timeout: this.options.sendTimeoutMs,
    }).then(
      () => this.acked(entry),
      (cause: unknown) => {
        if (this.failure || entry.attempt !== attempt) return;
        if (chained && isStaleChain(cause) && this.allAckedBefore(entry)) this.restartChain();
        else this.failWith(toNatsFailure(cause, `message ${entry.id} on ${record.topic} (${record.source})`));
      },
    );
  }

  private acked(entry: InFlight<Token>): void {
    if (this.failure || entry.done) return;
    entry.done = true;
    this.settle();
  }

  private allAckedBefore(entry: InFlight<Token>): boolean {
    // Acks are applied from the head as they come, so "all before it acked" means it is the head.
    return this.inflight[0] === entry;
  }

  /**
   * A publish refused for its expected last id while every one before it is
   * acked: the stream ends with a message that was already there (a duplicate),
   * not with a gap. Publishes it again, unchained (nothing before it is
   * missing), and those after it chained anew; their first attempts were
   * chained to it, so they are refused too, and ignored.
   */
  private restartChain(): void {
    this.lastId = undefined;
    for (const later of this.inflight) {
      if (later.done) continue;
      later.attempt++;
      this.publish(later);
    }
  }

  /** Applies acks in push order: one answered before an earlier one waits for it. */
  private settle(): void {
    while (this.inflight.length > 0 && (this.inflight[0] as InFlight<Token>).done) {
      const { token, record, started } = this.inflight.shift() as InFlight<Token>;
      this.inflightBytes -= record.sizeBytes;
      this.events.acked(token);
      this.events.onAcked?.(1, record.sizeBytes, performance.now() - started);
      // Acked by JetStream, and every attempt's bytes already handed on: nats.js writes what
      // publish() queued to its transport in a microtask, before any ack can arrive. The bytes can
      // carry the records to come (wire-record.ts), as the Kafka sink's do once acked.
      releaseRecord(record);
    }
    this.wake();
  }

  private idle(): boolean {
    return this.inflight.length === 0;
  }

  private full(): boolean {
    return (
      this.inflight.length >= this.options.maxInflightRecords || this.inflightBytes >= this.options.maxInflightBytes
    );
  }

  private async room(): Promise<void> {
    while (this.full()) {
      if (this.failure) throw this.failure;
      await new Promise<void>((resolve) => this.roomWaiters.push(resolve));
    }
  }

  private failWith(failure: RelayError): void {
    if (this.failure) return;
    this.failure = failure;
    this.inflight = [];
    this.events.failed(failure);
    this.wake();
  }

  private wake(): void {
    const room = this.roomWaiters;
    this.roomWaiters = [];
    for (const resolve of room) resolve();
    if (this.idle()) {
      const drained = this.drainWaiters;
      this.drainWaiters = [];
      for (const resolve of drained) resolve();
    }
  }
}
