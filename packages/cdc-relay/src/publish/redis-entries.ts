import { RelayError } from '../errors.ts';
import type { KafkaRecord, RecordPosition } from '../kafka-record.ts';

/**
 * How a record becomes a Redis stream entry (docs/events.md, "On Redis
 * Streams"): the stream is the record's topic, the fields are `key`,
 * `payload` (the value's bytes, unchanged) and one `h:<name>` per header.
 *
 * The entry id is `<commit LSN as a decimal>-<position in the transaction>`.
 * pgoutput streams transactions in commit order, so ids strictly increase in
 * each stream; Redis refuses an XADD whose id is not above the stream's top,
 * which turns the resend of a session that died after Redis had its entries
 * into a refusal instead of a duplicate.
 */

const KEY_FIELD = Buffer.from('key');
const PAYLOAD_FIELD = Buffer.from('payload');
const headerFields = new Map<string, Buffer>();

export function entryId(position: RecordPosition): string {
  return `${position.commitLsn}-${position.seq}`;
}

/** XADD's arguments after the command name: stream, trimming, id, fields. */
export function xaddArgs(record: KafkaRecord, maxLen: number | undefined): Array<string | Buffer> {
  const args: Array<string | Buffer> = [record.topic];
  // `~` lets Redis trim whole macro nodes only, which costs next to nothing; the stream keeps
  // at least maxLen entries.
  if (maxLen !== undefined) args.push('MAXLEN', '~', String(maxLen));
  args.push(entryId(record.position));
  const fieldsAt = args.length;
  if (record.key) args.push(KEY_FIELD, record.key);
  if (record.value) args.push(PAYLOAD_FIELD, record.value);
  for (const [name, value] of record.headers) args.push(headerField(name), value);
  // XADD needs one field at least: a row with neither key nor payload still says where it was.
  if (args.length === fieldsAt) args.push(PAYLOAD_FIELD, Buffer.alloc(0));
  return args;
}

function headerField(name: Buffer): Buffer {
  const text = name.toString('latin1');
  let field = headerFields.get(text);
  if (!field) {
    field = Buffer.concat([Buffer.from('h:'), name]);
    headerFields.set(text, field);
  }
  return field;
}

/** Redis's answer to an XADD whose id is not above the stream's top item. */
export function isIdRefusal(error: unknown): boolean {
  return error instanceof Error && /equal or smaller than the target stream top item/.test(error.message);
}

/** Compares two stream ids `ms-seq` numerically. */
export function compareIds(a: string, b: string): number {
  const [aMs, aSeq] = splitId(a);
  const [bMs, bSeq] = splitId(b);
  if (aMs !== bMs) return aMs < bMs ? -1 : 1;
  if (aSeq !== bSeq) return aSeq < bSeq ? -1 : 1;
  return 0;
}

function splitId(id: string): [bigint, bigint] {
  const [ms, seq] = id.split('-') as [string, string?];
  return [BigInt(ms), BigInt(seq ?? 0)];
}

/**
 * A refused id is already delivered when the stream holds it, or when the
 * stream's first entry is past it (trimmed away since). Otherwise something
 * else wrote a higher id into the stream and the record would be lost: the
 * relay must be its streams' only writer.
 */
export function refusalVerdict(
  stream: string,
  id: string,
  found: boolean,
  firstId: string | undefined,
): RelayError | undefined {
  if (found) return undefined;
  if (firstId !== undefined && compareIds(firstId, id) > 0) return undefined;
  return new RelayError(
    'SINK_SEND_FAILED',
    `Redis stream ${stream} refused entry ${id} as not above its top item, yet does not hold it: another writer added entries with higher ids (ids are the relay's commit LSN-position, so the relay must be its streams' only writer). Relaying on would lose this record; move the other writer to its own stream (or delete the stream) and restart the relay`,
    { retryable: false },
  );
}

/** The one place where a Redis client error becomes a RelayError. */
export function toRedisFailure(cause: unknown, what: string): RelayError {
  if (cause instanceof RelayError) return cause;
  const message = cause instanceof Error ? cause.message : String(cause);
  // A human must act: wrong credentials, or a key of the stream's name that is not a stream.
  if (/^(WRONGPASS|NOAUTH|NOPERM|WRONGTYPE)/.test(message)) {
    return new RelayError(
      'SINK_SEND_FAILED',
      `Redis refused ${what}: ${message} (check REDIS_URL and the streams' keys)`,
      {
        retryable: false,
        cause,
      },
    );
  }
  return new RelayError('SINK_SEND_FAILED', `Redis did not ack ${what}: ${message}`, { retryable: true, cause });
}
