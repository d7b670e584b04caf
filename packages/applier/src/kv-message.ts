import {
  eventVersion,
  type KvEvent,
  kvEvent,
  parseTraceparent,
  RELAY_HEADERS,
  relayHeaders,
  TRACEPARENT,
  type TraceContext,
} from '@walnut/schema';
import type { KafkaMessage } from 'kafkajs';

export interface DecodedKvEvent {
  event: KvEvent;
  version: bigint;
  /** The writing transaction's id, when the relay sent it (see applyBatch). */
  xid?: number;
  /** The writer's span, from the record's traceparent header; applying it is a child span. */
  trace?: TraceContext;
}

export type Decoded = { ok: true; value: DecodedKvEvent } | { ok: false; error: string };

/**
 * Turns a relayed Kafka record back into a KV event and its version. Pure.
 * Anything that fails here is a poison record: retrying cannot fix it.
 */
export function decodeKvMessage(message: Pick<KafkaMessage, 'value' | 'headers'>): Decoded {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(message.headers ?? {})) {
    const first = Array.isArray(value) ? value[0] : value;
    if (first !== undefined) headers[name] = first.toString();
  }
  const position = relayHeaders.safeParse(headers);
  if (!position.success) return { ok: false, error: `bad relay headers: ${position.error.message}` };
  if (!message.value) return { ok: false, error: 'empty value' };
  let json: unknown;
  try {
    json = JSON.parse(message.value.toString('utf8'));
  } catch (error) {
    return { ok: false, error: `value is not JSON: ${(error as Error).message}` };
  }
  const event = kvEvent.safeParse(json);
  if (!event.success) return { ok: false, error: `not a KV event: ${event.error.message}` };
  const lsn = position.data[RELAY_HEADERS.commitLsn];
  const seq = position.data[RELAY_HEADERS.seq];
  const xid = position.data[RELAY_HEADERS.xid];
  const value: DecodedKvEvent = { event: event.data, version: eventVersion(lsn, seq) };
  if (xid !== undefined) value.xid = xid;
  // A malformed traceparent only loses the trace link, not the event.
  const trace = parseTraceparent(headers[TRACEPARENT]);
  if (trace) value.trace = trace;
  return { ok: true, value };
}

/**
 * Keeps the newest event per key. One upsert cannot touch a row twice, and an
 * older event of the same batch would lose to the version guard anyway.
 */
export function newestPerKey(events: readonly DecodedKvEvent[]): DecodedKvEvent[] {
  const newest = new Map<string, DecodedKvEvent>();
  for (const e of events) {
    const seen = newest.get(e.event.key);
    if (!seen || seen.version < e.version) newest.set(e.event.key, e);
  }
  return [...newest.values()];
}
