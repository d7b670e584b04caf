import { type MsgHdrs, headers as natsHeaders } from '@nats-io/transport-node';
import type { KafkaRecord, RecordPosition } from '../kafka-record.ts';

/**
 * How a record becomes a JetStream message (docs/events.md, "On NATS
 * JetStream"): the subject is the record's topic, the payload the value's
 * bytes unchanged, each record header a NATS header of the same name (its value
 * as UTF-8 text), and the key in the `walnut-key` header.
 *
 * Nats-Msg-Id is `<commit LSN as a decimal>-<position in the transaction>`,
 * the Redis sink's entry id: what the slot streams again after a restart
 * carries the id it had, and JetStream drops it within the stream's duplicate
 * window. Not the event id: a row repeating an earlier row's id would be
 * dropped as a duplicate, and the next message's expected last id (nats-sink.ts)
 * would then name a message the stream does not end with, refusing every
 * session at the same place.
 */

/** The header that carries the record's key (NATS messages have no key of their own). */
export const KEY_HEADER = 'walnut-key';

export function messageId(position: RecordPosition): string {
  return `${position.commitLsn}-${position.seq}`;
}

/** The record's headers, key and message id as NATS headers. */
export function messageHeaders(record: KafkaRecord): MsgHdrs {
  const out = natsHeaders();
  // nats.js refuses CR or LF in a header value and trims spaces around it: the outbox's header
  // columns (type, traceparent, id) hold neither, and a value that does is refused, not altered.
  if (record.key) out.append(KEY_HEADER, record.key.toString('utf8'));
  for (const [name, value] of record.headers) out.append(name.toString('utf8'), value.toString('utf8'));
  return out;
}

/**
 * The subjects a stream needs to capture for a topic template: the fixed
 * tokens before the first placeholder, then `>` (a column's value may hold
 * dots, so it can span several tokens). A template without placeholders is
 * one literal subject.
 */
export function templateSubject(template: string): string {
  const tokens = template.split('.');
  const first = tokens.findIndex((token) => /\{[^}]*\}/.test(token));
  if (first === -1) return template;
  return [...tokens.slice(0, first), '>'].join('.');
}

/** Whether the stream subject `filter` captures every subject `subject` (itself maybe a wildcard) stands for. */
export function captures(filter: string, subject: string): boolean {
  const f = filter.split('.');
  const s = subject.split('.');
  for (let i = 0; i < s.length; i++) {
    const token = f[i];
    if (token === undefined) return false;
    if (token === '>') return true;
    const wanted = s[i] as string;
    if (token === '*') {
      if (wanted === '>') return false;
      continue;
    }
    if (token !== wanted) return false;
  }
  return f.length === s.length;
}

/** The needed subjects none of the stream's subjects capture. */
export function uncaptured(streamSubjects: readonly string[], needed: readonly string[]): string[] {
  return needed.filter((subject) => !streamSubjects.some((filter) => captures(filter, subject)));
}
