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
  /**
   * Set by the producer (the pnpm patch of @platformatic/kafka), which sends a
   * WireRecord as its own message instead of a copy of its fields: declared
   * here so every record has one shape. Undefined until then, so that the
   * partitioner picks it (a number here would be taken as the caller's choice).
   */
  partition: number | undefined = undefined;
  timestamp: bigint | undefined = undefined;
  /** The slab its bytes were cut from, until releaseWire gives them back; null for bytes of their own. */
  private slab: WireSlab | null;
  /**
   * Where its bytes are, without a Buffer view: a record waits for its ack
   * through several scavenges, and a view of its own was one more object
   * for each of them to copy. `wire` makes one when it is read. The patched
   * producer reads these three (a message with a `wireStore` is sent as these
   * bytes) and makes the one view it sends; undefined once released.
   */
  wireStore: ArrayBufferLike | undefined;
  readonly wireOffset: number;
  readonly wireLength: number;

  constructor(
    readonly topic: string,
    /** WIRE_HEAD_ROOM bytes, then key, value and headers. */
    bytes: Buffer,
    readonly sizeBytes: number,
    readonly position: RecordPosition,
    unmappable: string | undefined,
    slab: WireSlab | null = null,
  ) {
    if (unmappable !== undefined) this.unmappable = unmappable;
    this.slab = slab;
    this.wireStore = bytes.buffer;
    this.wireOffset = bytes.byteOffset;
    this.wireLength = bytes.length;
  }

  /** The encoded record; its bytes may belong to another record once it is released. */
  get wire(): Buffer {
    if (this.wireStore === undefined)
      throw new Error(
        `${this.topic} record at ${formatLsn(this.position.commitLsn)} #${this.position.seq} read after its bytes were released`,
      );
    return Buffer.from(this.wireStore, this.wireOffset, this.wireLength);
  }

  /**
   * Its sink has the record durably (acked, and committed in a transaction):
   * its bytes go back to the slab they were cut from, for records to come.
   * Only the sink that sent it may call this, once.
   */
  release(): void {
    if (this.wireStore === undefined) return;
    this.wireStore = undefined;
    const slab = this.slab;
    this.slab = null;
    if (slab) returnToSlab(slab);
  }

  /**
   * Read by the partitioner for every record: one view, of the key alone, read
   * from the slab's own Buffer (a view of the whole record to read it from was
   * two objects more per record). A record with bytes of its own (too large
   * for a slab, or a replay's copy) has no Buffer to read from but that view.
   */
  get key(): Buffer | undefined {
    const bytes = this.slab?.bytes ?? this.wire;
    const length = readVarInt(bytes, this.wireOffset - bytes.byteOffset + WIRE_HEAD_ROOM);
    return length < 0 ? undefined : Buffer.from(bytes.buffer, bytes.byteOffset + varIntEnd, length);
  }

  get value(): Buffer | undefined {
    const wire = this.wire;
    const key = readBytes(wire, WIRE_HEAD_ROOM);
    return readBytes(wire, key.end).bytes;
  }

  get headers(): Map<Buffer, Buffer> {
    const wire = this.wire;
    const count = readVarInt(wire, readBytes(wire, readBytes(wire, WIRE_HEAD_ROOM).end).end);
    let at = varIntEnd;
    const headers = new Map<Buffer, Buffer>();
    for (let i = 0; i < count; i++) {
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
    // Not the slab: the copy shares the bytes, and only one of them may give them back.
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
 * records. Records are acked in about the order they were made, so once the
 * last record cut from a slab is released (acked: WireRecord.release) the
 * slab is written again instead of waiting for a major GC to free it. That
 * keeps the relay's external memory near its in-flight window, and it spares
 * the page faults of fresh memory, which cost 1.4 µs per 4 KiB page on this
 * machine kind (a Firecracker VM): a third of a microsecond per 1 KB record.
 * A record that is never acked (its session failed) never releases: its slab
 * is left to the garbage collector, as before.
 */
const SLAB_BYTES = 256 * 1024;
/** Released slabs kept for reuse: more than a burst's worth would only hold memory. */
const MAX_FREE_SLABS = 8;

/** A slab, and how many records cut from it are not released yet. */
export class WireSlab {
  live = 0;
  constructor(readonly bytes: Buffer) {}
}

let slab = new WireSlab(Buffer.allocUnsafeSlow(0));
let slabUsed = 0;
const freeSlabs: Buffer[] = [];

/** Bytes for one record, and the slab they are cut from (null: too large for one, bytes of their own). */
export function allocWire(size: number): { wire: Buffer; slab: WireSlab | null } {
  if (size > SLAB_BYTES / 8) return { wire: Buffer.allocUnsafeSlow(size), slab: null };
  if (slabUsed + size > slab.bytes.length) {
    // Every record cut from the full slab is released already: write it again.
    if (slab.live === 0 && slab.bytes.length === SLAB_BYTES) slabUsed = 0;
    else {
      slab = new WireSlab(freeSlabs.pop() ?? Buffer.allocUnsafeSlow(SLAB_BYTES));
      slabUsed = 0;
    }
  }
  const wire = slab.bytes.subarray(slabUsed, slabUsed + size);
  slab.live++;
  // 8-byte aligned, as the pool does.
  slabUsed = (slabUsed + size + 7) & ~7;
  return { wire, slab };
}

function returnToSlab(released: WireSlab): void {
  // The current slab is still being cut: allocWire rewinds it when it is full and empty.
  if (--released.live === 0 && released !== slab && freeSlabs.length < MAX_FREE_SLABS) freeSlabs.push(released.bytes);
}

/** Gives a record's bytes back once its sink has it durably (see WireRecord.release); other records keep theirs. */
export function releaseRecord(record: KafkaRecord): void {
  if (record instanceof WireRecord) record.release();
}

/** Where the last readVarInt call's varint ended: its second result, without an object per call. */
let varIntEnd = 0;

/** The zig-zag varint at `offset`; sets varIntEnd. */
function readVarInt(buffer: Uint8Array, offset: number): number {
  let v = 0;
  let shift = 0;
  let byte: number;
  do {
    byte = buffer[offset++] as number;
    v |= (byte & 0x7f) << shift;
    shift += 7;
  } while (byte & 0x80);
  v >>>= 0;
  varIntEnd = offset;
  return (v >>> 1) ^ -(v & 1);
}

function readBytes(buffer: Buffer, offset: number): { bytes: Buffer | undefined; end: number } {
  const length = readVarInt(buffer, offset);
  const start = varIntEnd;
  if (length < 0) return { bytes: undefined, end: start };
  return { bytes: buffer.subarray(start, start + length), end: start + length };
}
