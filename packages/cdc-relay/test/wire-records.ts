import { headerName, type RecordPosition, recordSizeBytes } from '../src/kafka-record.ts';
import {
  allocWire,
  bytesFieldSize,
  WIRE_HEAD_ROOM,
  WireRecord,
  writeBytesField,
  writeVarInt,
} from '../src/wire-record.ts';

/**
 * A record as the outbox mapper makes it, its bytes cut from the shared slabs: for sink
 * tests that a sink gives those bytes back once the record is durable, and not before.
 */
export function slabRecord(
  topic: string,
  key: Buffer,
  value: Buffer,
  headers: Array<[Buffer, Buffer]>,
  position: RecordPosition,
): WireRecord {
  let size = WIRE_HEAD_ROOM + bytesFieldSize(key) + bytesFieldSize(value) + 1;
  for (const [name, v] of headers) size += bytesFieldSize(name) + bytesFieldSize(v);
  const { wire, slab } = allocWire(size);
  let at = writeBytesField(wire, WIRE_HEAD_ROOM, key);
  at = writeBytesField(wire, at, value);
  at = writeVarInt(wire, at, headers.length);
  for (const [name, v] of headers) at = writeBytesField(wire, writeBytesField(wire, at, name), v);
  return new WireRecord(topic, wire, recordSizeBytes(key, value, headers), position, undefined, slab);
}

/** Whether a record's bytes are still its own (a released record refuses to be read). */
export function readable(record: WireRecord): boolean {
  try {
    return record.wire.length > 0;
  } catch {
    return false;
  }
}

/** Records 0..count-1 of one transaction: key `k<n>`, payload `payload <n>`, id header `row-<n>`. */
export function numberedSlabRecords(topic: string, count: number, commitLsn: bigint): WireRecord[] {
  return Array.from({ length: count }, (_, seq) =>
    slabRecord(
      topic,
      Buffer.from(`k${seq}`),
      Buffer.from(`payload ${seq}`),
      [[headerName('id'), Buffer.from(`row-${seq}`)]],
      {
        commitLsn,
        seq,
      },
    ),
  );
}

/** What a sink should have stored of numberedSlabRecords: [id header, payload] each. */
export function numberedContents(count: number): Array<[string, string]> {
  return Array.from({ length: count }, (_, seq) => [`row-${seq}`, `payload ${seq}`]);
}
