// Over 300 lines on purpose: the row-to-record mapping and its encoding straight into Kafka's wire
// form (wire-record.ts) must agree byte for byte on topic, key, value, headers and size, and are
// kept side by side so that a change to one is seen beside the other.
import { formatLsn, type Lsn, RELAY_HEADERS } from '@walnut/schema';
import {
  HEADER_FRAMING_BYTES,
  headerName,
  type KafkaRecord,
  kafkaRecord,
  RECORD_FRAMING_BYTES,
} from './kafka-record.ts';
import type { Relation } from './pgoutput.ts';
import { copyBytes, type RowValues } from './row-values.ts';
import {
  allocWire,
  bytesFieldSize,
  type EncodedHeaders,
  varIntSize,
  WIRE_HEAD_ROOM,
  WireRecord,
  writeBytesField,
  writeVarInt,
} from './wire-record.ts';

/** Which table is the outbox and how its columns become a Kafka record. */
export interface OutboxMapping {
  schema: string;
  table: string;
  /** Column names; defaults follow Debezium's outbox event router. */
  columns: { id: string; key: string; payload: string };
  /** Topic name with `{column}` placeholders, e.g. `outbox.event.{aggregatetype}`. */
  topicTemplate: string;
  /** Columns copied verbatim into Kafka headers; a column the table lacks is skipped. */
  headerColumns: ReadonlyArray<{ column: string; header: string }>;
}

/** Where an outbox row sits in the WAL: the transaction it committed with. */
export interface TxPosition {
  commitLsn: Lsn;
  xid: number;
  /** Microseconds since the Unix epoch, as pgoutput sends it. */
  commitTimeMicros: bigint;
  /** Index of the row among the transaction's outbox rows, from 0. */
  seq: number;
  /** The headers every record of the transaction shares, encoded once (see transactionHeaders). */
  encodedHeaders?: ReadonlyArray<readonly [Buffer, Buffer]>;
  /** commitLsn as text, formatted once per transaction (see commitLsnText). */
  lsnText?: string;
  /** encodedHeaders as they go on the wire, encoded once per transaction (see transactionWire). */
  wireHeaders?: EncodedHeaders & { sizeBytes: number };
}

const BYTEA_OID = 17;

/** The transaction's commit LSN in Postgres's form, for headers and record sources: formatted once per transaction. */
export function commitLsnText(tx: TxPosition): string {
  tx.lsnText ??= formatLsn(tx.commitLsn);
  return tx.lsnText;
}

/**
 * LSN, xid and commit time are the same for every record of a transaction;
 * a 10,000-row transaction formats them once, not 10,000 times.
 */
export function transactionHeaders(tx: TxPosition): ReadonlyArray<readonly [Buffer, Buffer]> {
  tx.encodedHeaders ??= [
    [headerName(RELAY_HEADERS.commitLsn), Buffer.from(commitLsnText(tx), 'latin1')],
    [headerName(RELAY_HEADERS.xid), Buffer.from(String(tx.xid), 'latin1')],
    [headerName(RELAY_HEADERS.commitTime), commitTimeBytes(tx.commitTimeMicros)],
  ];
  return tx.encodedHeaders;
}

/** A commit time to the millisecond, in ISO form and as that text's latin1 bytes. */
interface CommitTime {
  ms: number;
  text: string;
  bytes: Buffer;
}

let lastCommitTime: CommitTime = { ms: Number.NaN, text: '', bytes: Buffer.alloc(0) };

/**
 * Transactions committed in the same millisecond share one CommitTime: in a drain of 1-row
 * transactions, tens of them do, formatting a Date cost 0.35 µs of each record's 18, and
 * Buffer#write of a string is a native call per record. Callers only read the bytes.
 */
function commitTime(micros: bigint): CommitTime {
  // Number() of a bigint allocates nothing; a bigint division would (a few µs of rounding past 2^53 cannot matter here).
  const ms = Math.floor(Number(micros) / 1000);
  if (ms !== lastCommitTime.ms) {
    const text = new Date(ms).toISOString();
    lastCommitTime = { ms, text, bytes: Buffer.from(text, 'latin1') };
  }
  return lastCommitTime;
}

export function commitTimeText(micros: bigint): string {
  return commitTime(micros).text;
}

/** For records written as wire bytes (writeTransactionHeaders). */
function commitTimeBytes(micros: bigint): Buffer {
  return commitTime(micros).bytes;
}

const LSN_HEADER = headerName(RELAY_HEADERS.commitLsn);
const XID_HEADER = headerName(RELAY_HEADERS.xid);
const TIME_HEADER = headerName(RELAY_HEADERS.commitTime);
const TX_HEADER_NAME_BYTES = bytesFieldSize(LSN_HEADER) + bytesFieldSize(XID_HEADER) + bytesFieldSize(TIME_HEADER);
const TX_HEADER_SIZE_BYTES = 3 * HEADER_FRAMING_BYTES + LSN_HEADER.length + XID_HEADER.length + TIME_HEADER.length;

/** A transaction's headers as wire fields, and what they add to a record's sizeBytes (kafka-record.ts). */
interface TransactionWire extends EncodedHeaders {
  sizeBytes: number;
}

/**
 * The headers of a transaction's first record, written here and copied into the record at once,
 * from a buffer of exactly their length: Buffer#copy of part of a buffer makes a view (node 20).
 */
const firstRecordHeaders: TransactionWire = { bytes: Buffer.alloc(0), count: 3, sizeBytes: 0 };
const scratchByLength: Buffer[] = [];
const TWO_TO_32 = 4_294_967_296;

/**
 * The transaction's headers as wire fields. Its first record's are written
 * into a shared scratch buffer, which the record copies at once: in 1-row
 * transactions, this runs once per record, and a Buffer and an object per
 * transaction were a twentieth of what the relay allocated. From its second
 * record on, they are encoded once more, into bytes the transaction keeps.
 */
function transactionWire(tx: TxPosition): TransactionWire {
  if (tx.wireHeaders) return tx.wireHeaders;
  if (tx.encodedHeaders) {
    tx.wireHeaders = encodedHeadersWire(tx.encodedHeaders);
    return tx.wireHeaders;
  }
  if (tx.seq === 0) return writeTransactionHeaders(tx, firstRecordHeaders, scratch);
  tx.wireHeaders = writeTransactionHeaders(tx, { bytes: firstRecordHeaders.bytes, count: 3, sizeBytes: 0 }, (length) =>
    Buffer.allocUnsafe(length),
  );
  return tx.wireHeaders;
}

function scratch(length: number): Buffer {
  let bytes = scratchByLength[length];
  if (!bytes) {
    bytes = Buffer.allocUnsafeSlow(length);
    scratchByLength[length] = bytes;
  }
  return bytes;
}

/** The LSN and xid go in as digits, without the strings (five for an LSN) and header pairs they once were. */
function writeTransactionHeaders(
  tx: TxPosition,
  into: TransactionWire,
  bytesOf: (length: number) => Buffer,
): TransactionWire {
  // Number() of a bigint allocates nothing, and is exact below 2^53 (8 PiB of WAL); the shift and mask would allocate.
  const lsn = Number(tx.commitLsn);
  const exact = Number.isSafeInteger(lsn);
  const high = exact ? Math.floor(lsn / TWO_TO_32) : Number(tx.commitLsn >> 32n);
  const low = exact ? lsn % TWO_TO_32 : Number(tx.commitLsn & 0xffffffffn);
  const lsnLength = hexDigits(high) + 1 + hexDigits(low);
  const xidLength = decimalDigits(tx.xid);
  const time = commitTimeBytes(tx.commitTimeMicros);
  const valueBytes = lsnLength + xidLength + time.length;
  const length =
    TX_HEADER_NAME_BYTES + varIntSize(lsnLength) + varIntSize(xidLength) + varIntSize(time.length) + valueBytes;
  into.bytes = bytesOf(length);
  const wire = into.bytes;
  let at = writeVarInt(wire, writeBytesField(wire, 0, LSN_HEADER), lsnLength);
  at = writeHex(wire, at, high);
  wire[at++] = 0x2f; // '/'
  at = writeHex(wire, at, low);
  at = writeVarInt(wire, writeBytesField(wire, at, XID_HEADER), xidLength);
  at = writeDecimal(wire, at, tx.xid, xidLength);
  at = writeVarInt(wire, writeBytesField(wire, at, TIME_HEADER), time.length);
  copyBytes(time, 0, time.length, wire, at);
  into.sizeBytes = TX_HEADER_SIZE_BYTES + valueBytes;
  return into;
}

/** Headers set by whoever made the position (replay, snapshot), as wire fields. */
function encodedHeadersWire(pairs: ReadonlyArray<readonly [Buffer, Buffer]>): TransactionWire {
  let bytes = 0;
  let sizeBytes = 0;
  for (const [name, value] of pairs) {
    bytes += bytesFieldSize(name) + bytesFieldSize(value);
    sizeBytes += HEADER_FRAMING_BYTES + name.length + value.length;
  }
  const wire = Buffer.allocUnsafe(bytes);
  let at = 0;
  for (const [name, value] of pairs) at = writeBytesField(wire, writeBytesField(wire, at, name), value);
  return { bytes: wire, count: pairs.length, sizeBytes };
}

function hexDigits(n: number): number {
  let digits = 1;
  while (n >= 16) {
    n = Math.floor(n / 16);
    digits++;
  }
  return digits;
}

const HEX = Buffer.from('0123456789ABCDEF', 'latin1');

/** n (0 to 2^32 - 1) in upper-case hex, as Postgres prints each half of an LSN. */
function writeHex(buffer: Buffer, at: number, n: number): number {
  const end = at + hexDigits(n);
  for (let i = end - 1; i >= at; i--) {
    buffer[i] = HEX[n % 16] as number;
    n = Math.floor(n / 16);
  }
  return end;
}

/** n (a whole number) in `digits` decimal digits. */
function writeDecimal(buffer: Buffer, at: number, n: number, digits: number): number {
  const end = at + digits;
  for (let i = end - 1; i >= at; i--) {
    buffer[i] = 0x30 + (n % 10);
    n = Math.floor(n / 10);
  }
  return end;
}

/** The relay's own headers: the transaction's, plus this record's position in it. */
export function relayHeaders(tx: TxPosition): Map<Buffer, Buffer> {
  const headers = new Map<Buffer, Buffer>(transactionHeaders(tx));
  headers.set(headerName(RELAY_HEADERS.seq), Buffer.from(String(tx.seq), 'latin1'));
  return headers;
}

/** Maps an inserted row of one relation to its Kafka record. */
export type RowMapper = (values: RowValues, tx: TxPosition) => KafkaRecord;

const mappers = new WeakMap<Relation, RowMapper>();

/**
 * The mapper for rows of `relation`: column positions are looked up once per
 * relation (a Relation message), not once per row. The payload goes out byte
 * for byte as Postgres printed it (json/jsonb/text), or decoded for bytea, so
 * consumers see what the app wrote, not a re-serialization.
 */
export function outboxRowMapper(mapping: OutboxMapping, relation: Relation): RowMapper {
  let mapper = mappers.get(relation);
  if (mapper) return mapper;
  const position = (column: string) => relation.columns.findIndex((c) => c.name === column);
  const id = position(mapping.columns.id);
  const key = position(mapping.columns.key);
  const payload = position(mapping.columns.payload);
  const payloadIsBytea = relation.columns[payload]?.typeOid === BYTEA_OID;
  const headerColumns = mapping.headerColumns.map(
    ({ column, header }) => [headerName(header), position(column)] as const,
  );
  const topic = topicRenderer(mapping.topicTemplate, position);
  const idHeader = headerName(RELAY_HEADERS.eventId);
  const seqHeader = headerName(RELAY_HEADERS.seq);

  // Header names the relay's own headers may use too: a header column named like one of them
  // replaces its value, as a Map would, so such a mapping keeps the plain path below.
  const names = [
    ...[RELAY_HEADERS.commitLsn, RELAY_HEADERS.xid, RELAY_HEADERS.commitTime, RELAY_HEADERS.replay].map(headerName),
    seqHeader,
    idHeader,
    ...headerColumns.map(([name]) => name),
  ];
  const distinctNames = new Set(names).size === names.length;

  const wireMapper: RowMapper = (values, tx) => {
    const idLength = values.byteLength(id);
    const keyLength = values.byteLength(key);
    const rendered = topic(values);
    let problem = typeof rendered === 'string' ? undefined : rendered.problem;
    // The payload is copied from the row as it is, unless it is bytea (decoded: a rare path).
    let decodedPayload: Buffer | null = null;
    let valueLength = values.byteLength(payload);
    if (valueLength >= 0 && payloadIsBytea) {
      const decoded = decodeByteaHex(values.column(payload) as Buffer);
      if ('problem' in decoded) problem = problem === undefined ? decoded.problem : `${problem}; ${decoded.problem}`;
      else {
        decodedPayload = decoded;
        valueLength = decoded.length;
      }
    }
    const txHeaders = transactionWire(tx);
    const seqDigits = decimalDigits(tx.seq);
    let count = txHeaders.count + 1;
    let wireBytes =
      WIRE_HEAD_ROOM +
      lengthFieldSize(keyLength) +
      lengthFieldSize(valueLength) +
      txHeaders.bytes.length +
      bytesFieldSize(seqHeader) +
      varIntSize(seqDigits) +
      seqDigits;
    let sizeBytes =
      RECORD_FRAMING_BYTES +
      Math.max(keyLength, 0) +
      Math.max(valueLength, 0) +
      txHeaders.sizeBytes +
      HEADER_FRAMING_BYTES +
      seqHeader.length +
      seqDigits;
    if (idLength >= 0) {
      count++;
      wireBytes += bytesFieldSize(idHeader) + lengthFieldSize(idLength);
      sizeBytes += HEADER_FRAMING_BYTES + idHeader.length + idLength;
    }
    for (let h = 0; h < headerColumns.length; h++) {
      const [name, index] = headerColumns[h] as (typeof headerColumns)[number];
      const headerLength = values.byteLength(index);
      if (headerLength < 0) continue;
      count++;
      wireBytes += bytesFieldSize(name) + lengthFieldSize(headerLength);
      sizeBytes += HEADER_FRAMING_BYTES + name.length + headerLength;
    }
    wireBytes += varIntSize(count);
    // Everything the record keeps is copied into its own bytes here: the row's values are read
    // in the WAL stream's receive buffer, which the next read reuses (pgoutput.ts).
    const { wire, slab } = allocWire(wireBytes);
    let offset = writeColumnField(wire, WIRE_HEAD_ROOM, values, key);
    offset = decodedPayload
      ? writeBytesField(wire, offset, decodedPayload)
      : writeColumnField(wire, offset, values, valueLength < 0 ? -1 : payload);
    offset = writeVarInt(wire, offset, count);
    // Whole buffers, so that the copy makes no view (transactionWire).
    offset += txHeaders.bytes.copy(wire, offset);
    offset = writeBytesField(wire, offset, seqHeader);
    offset = writeVarInt(wire, offset, seqDigits);
    offset = writeDecimal(wire, offset, tx.seq, seqDigits);
    if (idLength >= 0) offset = writeColumnField(wire, writeBytesField(wire, offset, idHeader), values, id);
    for (let h = 0; h < headerColumns.length; h++) {
      const [name, index] = headerColumns[h] as (typeof headerColumns)[number];
      if (values.byteLength(index) >= 0)
        offset = writeColumnField(wire, writeBytesField(wire, offset, name), values, index);
    }
    return new WireRecord(
      typeof rendered === 'string' ? rendered : mapping.topicTemplate,
      wire,
      sizeBytes,
      { commitLsn: tx.commitLsn, seq: tx.seq },
      problem,
      slab,
    );
  };

  const plainMapper: RowMapper = (values, tx) => {
    const idValue = at(values, id);
    const headers = relayHeaders(tx);
    if (idValue) headers.set(idHeader, idValue);
    for (const [name, index] of headerColumns) {
      const value = at(values, index);
      if (value) headers.set(name, value);
    }
    const payloadValue = at(values, payload) ?? undefined;
    const rendered = topic(values);
    const decoded = payloadValue && payloadIsBytea ? decodeByteaHex(payloadValue) : payloadValue;
    const problems: string[] = [];
    if (typeof rendered !== 'string') problems.push(rendered.problem);
    let value = payloadValue;
    if (decoded && 'problem' in decoded) problems.push(decoded.problem);
    else value = decoded;
    return kafkaRecord(
      typeof rendered === 'string' ? rendered : mapping.topicTemplate,
      at(values, key) ?? undefined,
      value,
      headers,
      idValue ? `outbox row ${idValue.toString('utf8')}` : `outbox row at ${commitLsnText(tx)} #${tx.seq}`,
      { commitLsn: tx.commitLsn, seq: tx.seq },
      problems.length > 0 ? problems.join('; ') : undefined,
    );
  };
  mapper = distinctNames ? wireMapper : plainMapper;
  mappers.set(relation, mapper);
  return mapper;
}

function decimalDigits(n: number): number {
  let digits = 1;
  while (n >= 10) {
    n = Math.floor(n / 10);
    digits++;
  }
  return digits;
}

function at(values: RowValues, index: number): Buffer | null {
  return values.column(index);
}

/** The encoded size of a length-prefixed field of `length` bytes (-1: null). */
function lengthFieldSize(length: number): number {
  return length < 0 ? 1 : varIntSize(length) + length;
}

/** Column `index` of the row as a length-prefixed field (-1 or a null column: length -1). */
function writeColumnField(buffer: Buffer, offset: number, values: RowValues, index: number): number {
  const length = values.byteLength(index);
  offset = writeVarInt(buffer, offset, length);
  return values.copyTo(index, buffer, offset);
}

const PLACEHOLDER = /\{([A-Za-z_][A-Za-z0-9_]*)\}/g;

/** Why a row cannot be mapped; the sink dead-letters or stops on it (publish/record-rules.ts). */
export interface Unmappable {
  problem: string;
}

/**
 * A topic template compiled against a relation's columns; a template without
 * placeholders is a constant. Whether the rendered name is legal is the sink's
 * check (topicProblem), which covers message topics too.
 */
export function topicRenderer(
  template: string,
  position: (column: string) => number,
): (values: RowValues) => string | Unmappable {
  if (!template.includes('{')) return () => template;
  const parts: Array<string | { column: string; index: number }> = [];
  let last = 0;
  for (const match of template.matchAll(PLACEHOLDER)) {
    parts.push(template.slice(last, match.index));
    const column = match[1] as string;
    parts.push({ column, index: position(column) });
    last = match.index + match[0].length;
  }
  parts.push(template.slice(last));
  const columns = parts.filter((part): part is { column: string; index: number } => typeof part !== 'string');
  // The last topic rendered, and the column bytes it came from: consecutive rows mostly share
  // a topic, and one comparison in place costs less than two strings per row.
  let lastBytes: Buffer[] | null = null;
  let lastTopic = '';
  return (values) => {
    if (lastBytes && sameColumns(values, columns, lastBytes)) return lastTopic;
    let topic = '';
    for (const part of parts) {
      if (typeof part === 'string') {
        topic += part;
        continue;
      }
      const value = at(values, part.index);
      if (!value || value.length === 0) {
        return { problem: `topic template ${template} needs column "${part.column}", which is empty in this row` };
      }
      topic += value.toString('utf8');
    }
    // Copies: the row's bytes are overwritten by the stream's next read.
    lastBytes = columns.map((part) => Buffer.from(at(values, part.index) as Buffer));
    lastTopic = topic;
    return topic;
  };
}

function sameColumns(values: RowValues, columns: ReadonlyArray<{ index: number }>, bytes: readonly Buffer[]): boolean {
  for (let i = 0; i < columns.length; i++) {
    if (!values.equals((columns[i] as { index: number }).index, bytes[i] as Buffer)) return false;
  }
  return true;
}

function decodeByteaHex(text: Buffer): Buffer | Unmappable {
  // bytea_output=hex is the default since Postgres 9.0; pgoutput uses it too.
  if (text[0] !== 0x5c /* \ */ || text[1] !== 0x78 /* x */) {
    return { problem: 'its bytea payload is not in hex output format' };
  }
  return Buffer.from(text.toString('latin1', 2), 'hex');
}
