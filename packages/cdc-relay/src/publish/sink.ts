import type { RelayError } from '../errors.ts';
import type { KafkaRecord } from '../kafka-record.ts';

/**
 * Where the live stream, replay and snapshot hand their records: the seam a
 * second kind of sink plugs into. Kafka is the first implementation
 * (kafka-sink.ts); what is Kafka's (transactions, checkpoints, its size rule,
 * its errors) stays behind this interface.
 *
 *   start ─▶ push, push, … (seal) … ─▶ drain ─▶ close
 *                 │
 *                 └─▶ events.acked(token), in push order, once durable
 *
 * The guarantees a caller builds on: acks come in push order, so "acked"
 * always names a prefix of what was pushed (the LSN-confirm rule and the
 * replay's cursor both rest on it); a record is never dropped, it is sent,
 * dead-lettered, or the sink fails; and after start() no older writer with the
 * same identity (an earlier session of the slot, a killed run of the same
 * replay) can land a record.
 */
export interface RecordSink<Token> {
  /**
   * Fences: takes over the sink's identity, so that an older writer of it can
   * write no more. Before the first push; rejects with a RelayError.
   */
  start(): Promise<void>;
  /**
   * Takes a record. Returns a promise only when the window is full (wait for
   * it before pushing more); undefined when there is room, so the common case
   * costs no promise. Throws once the sink has failed, or when the record can
   * never be sent and there is nowhere to dead-letter it.
   */
  push(record: KafkaRecord, token: Token): Promise<void> | undefined;
  /**
   * The records pushed since the last seal are one unit: a sink that can make
   * them durable atomically does (Kafka: one transaction). No-op otherwise.
   */
  seal(): void;
  /**
   * Seals, then resolves true once every pushed record is acked, or false
   * after timeoutMs (none: until acked or failed). A failure is reported
   * through events.failed, not here.
   */
  drain(timeoutMs?: number): Promise<boolean>;
  /** Drops whatever is not yet sent; the sink takes no more records. */
  close(): void;
  /** Encoded bytes pushed and not yet acked. */
  readonly bufferedBytes: number;
}

/** What a sink reports to its caller. */
export interface SinkEvents<Token> extends SinkObserver {
  /** One pushed record is durable; called in push order. */
  acked(token: Token): void;
  /** The sink failed (once): nothing pushed after the last ack will be acked. */
  failed(error: RelayError): void;
}

/** Figures for metrics. */
export interface SinkObserver {
  /** A request of records was acked (in order): how many, their bytes, and how long it took. */
  onAcked?(records: number, bytes: number, latencyMs: number): void;
  /** A request of records went out; requestsInFlight counts it too. */
  onSent?(requestsInFlight: number): void;
}

/** Opens a sink that reports to `events`: what the stream and replay are given, so they name no implementation. */
export type OpenSink<Token> = (events: SinkEvents<Token>) => RecordSink<Token>;

/** A run's sinks and the connection they share, released (at once, whatever is in flight) when the run is over. */
export interface SinkConnection<Token> {
  open: OpenSink<Token>;
  release(): Promise<void>;
}
