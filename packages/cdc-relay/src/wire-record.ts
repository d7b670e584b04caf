import { formatLsn, RELAY_HEADERS } from '@walnut/schema';
import { headerName, type KafkaRecord, type RecordPosition } from './kafka-record.ts';

/**
 * A record encoded once, as it goes on the wire: its key, value and headers
 * in Kafka's record v2 form (zig-zag varint lengths, KIP-98), after
 * WIRE_HEAD_ROOM bytes the producer fills with what depends on the batch
 * (length, attributes, timestamp and offset deltas: the `wire` part of the
 * pnpm patch of @platformatic/kafka). The outbox mapper writes it straight
 * from the WAL bytes, so a row's payload is copied once on its way to Kafka
 * (it was copied three times: pgoutput's copy of the message, the record's
 * headers and views, the producer's record buffer) and a record is a handful
 * of objects instead of a few dozen, which is what the garbage collector paid
 * for. Key, value and headers are read back from the bytes only when someone
 * asks (the partitioner's key; the dead-letter rule and errors, rarely).
 */
export const WIRE_HEAD_ROOM = 16;

const ID_HEADER = headerName(RELAY_HEADERS.eventId);

export class WireRecord implements KafkaRecord {
  unmappable?: string;

  constructor(
    readonly topic: string,
    /** WIRE_HEAD_ROOM bytes, then key, value and headers. */
    readonly wire: Buffer,
    readonly sizeBytes: number,
    readonly position: RecordPosition,
    unmappable: string | undefined,
  ) {
    if (unmappable !== undefined) this.unmappable = unmappable;
  }

  get key(): Buffer | undefined {
    return readBytes(this.wire, WIRE_HEAD_ROOM).bytes;
  }

  get value(): Buffer | undefined {
    const key = readBytes(this.wire, WIRE_HEAD_ROOM);
    return readBytes(this.wire, key.end).bytes;
  }

  get headers(): Map<Buffer, Buffer> {
    const wire = this.wire;
    let at = readBytes(wire, readBytes(wire, WIRE_HEAD_ROOM).end).end;
    const count = readVarInt(wire, at);
    at = count.end;
    const headers = new Map<Buffer, Buffer>();
    for (let i = 0; i < count.value; i++) {
      const name = readBytes(wire, at);
      const value = readBytes(wire, name.end);
      at = value.end;
      // Names are the relay's interned Buffers (headerName), so that lookups by name still work.
      if (name.bytes && value.bytes) headers.set(headerName(name.bytes.toString('utf8')), value.bytes);
    }
    return headers;
  }

  /** An outbox row: its id header, else its place in the WAL (as the plain mapping named it). */
  get source(): string {
    const id = this.headers.get(ID_HEADER);
    if (id) return `outbox row ${id.toString('utf8')}`;
    return `outbox row at ${formatLsn(this.position.commitLsn)} #${this.position.seq}`;
  }

  /** The same record bound for another topic (a replay's --to-topic). */
  withTopic(topic: string): WireRecord {
    return new WireRecord(topic, this.wire, this.sizeBytes, this.position, this.unmappable);
  }
}

/** `record` bound for `topic`: a spread would drop a WireRecord's getters. */
export function withTopic(record: KafkaRecord, topic: string): KafkaRecord {
  return record instanceof WireRecord ? record.withTopic(topic) : { ...record, topic };
}

/** The encoded size of a zig-zag varint of `value` (-1 or a length). */
export function varIntSize(value: number): number {
  let v = ((value << 1) ^ (value >> 31)) >>> 0;
  let size = 1;
  while (v >= 0x80) {
    v >>>= 7;
    size++;
  }
  return size;
}

export function writeVarInt(buffer: Buffer, offset: number, value: number): number {
  let v = ((value << 1) ^ (value >> 31)) >>> 0;
  while (v >= 0x80) {
    buffer[offset++] = (v & 0x7f) | 0x80;
    v >>>= 7;
  }
  buffer[offset++] = v;
  return offset;
}

/** Bytes of a length-prefixed field (null: length -1). */
export function bytesFieldSize(bytes: Uint8Array | null | undefined): number {
  return bytes == null ? 1 : varIntSize(bytes.length) + bytes.length;
}

export function writeBytesField(buffer: Buffer, offset: number, bytes: Uint8Array | null | undefined): number {
  if (bytes == null) return writeVarInt(buffer, offset, -1);
  offset = writeVarInt(buffer, offset, bytes.length);
  buffer.set(bytes, offset);
  return offset + bytes.length;
}

/** Headers, encoded as a run of fields (without their count). */
export interface EncodedHeaders {
  bytes: Buffer;
  count: number;
}

/**
 * A record's bytes, cut from a slab shared by the records encoded after each
 * other: Buffer.allocUnsafe's pool is 8 KiB, so 1 KB records made a new
 * ArrayBuffer (a backing store the garbage collector tracks) every few
 * records. Records are acked, and dropped, in about the order they were made,
 * so a slab is freed soon after its last record.
 */
const SLAB_BYTES = 256 * 1024;
let slab = Buffer.allocUnsafeSlow(0);
let slabUsed = 0;

export function allocWire(size: number): Buffer {
  if (size > SLAB_BYTES / 8) return Buffer.allocUnsafeSlow(size);
  if (slabUsed + size > slab.length) {
    slab = Buffer.allocUnsafeSlow(SLAB_BYTES);
    slabUsed = 0;
  }
  const wire = slab.subarray(slabUsed, slabUsed + size);
  // 8-byte aligned, as the pool does.
  slabUsed = (slabUsed + size + 7) & ~7;
  return wire;
}

function readVarInt(buffer: Buffer, offset: number): { value: number; end: number } {
  let v = 0;
  let shift = 0;
  let byte: number;
  do {
    byte = buffer[offset++] as number;
    v |= (byte & 0x7f) << shift;
    shift += 7;
  } while (byte & 0x80);
  v >>>= 0;
  return { value: (v >>> 1) ^ -(v & 1), end: offset };
}

function readBytes(buffer: Buffer, offset: number): { bytes: Buffer | undefined; end: number } {
  const length = readVarInt(buffer, offset);
  if (length.value < 0) return { bytes: undefined, end: length.end };
  return { bytes: buffer.subarray(length.end, length.end + length.value), end: length.end + length.value };
}
