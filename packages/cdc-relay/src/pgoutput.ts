/**
 * Decodes the pgoutput messages the relay acts on (protocol version 1,
 * https://www.postgresql.org/docs/current/protocol-logicalrep-message-formats.html).
 * Pure: a message buffer in, a tagged value out.
 *
 * Why not pg-logical-replication's parser: it decodes every column to a
 * string (and through node-postgres' type parsers), so a payload went bytes →
 * string → bytes on its way to Kafka, and it formats LSNs as text and builds objects
 * for messages the relay ignores. Here a tuple's values (and a logical message's
 * content) stay bytes, read in place in the message itself (row-values.ts), with
 * no copy: they are valid only until the stream's next socket read, whose bytes pg-protocol may
 * write over them. A message is `message[start, end)`: pg-protocol hands the relay its
 * CopyData messages where they lie in the chunk read from the socket (pnpm patches of
 * pg-protocol and pg-logical-replication), so the bytes after `end` are the next message's. That is long enough: pg-logical-replication (flow control on)
 * pauses the socket while any decoded message waits in its queue, and the
 * relay maps each message into a record of its own bytes (wire-record.ts,
 * message-mapping.ts) when it takes it from the queue. Whoever keeps a value
 * longer must copy it.
 */
import type { Lsn } from '@walnut/schema';
import { type RowValues, WalTuple } from './row-values.ts';

export interface Relation {
  oid: number;
  schema: string;
  name: string;
  columns: Array<{ name: string; typeOid: number }>;
}

export type PgoutputMessage =
  | { tag: 'begin'; commitLsn: Lsn; commitTimeMicros: bigint; xid: number }
  | { tag: 'commit'; commitEndLsn: bigint }
  | { tag: 'relation'; relation: Relation }
  | { tag: 'insert'; relation: Relation; values: RowValues }
  | { tag: 'message'; transactional: boolean; messageLsn: Lsn; prefix: string; content: Buffer }
  /** Type, origin, update, delete, truncate: nothing the relay relays. */
  | { tag: 'ignored'; kind: string };

/** Microseconds between the Unix epoch and Postgres's (2000-01-01). */
const POSTGRES_EPOCH_MICROS = 946_684_800_000_000;
const TWO_TO_32 = 4_294_967_296;

export class PgoutputDecoder {
  private readonly relations = new Map<number, Relation>();

  /** The message `message[start, end)`: bytes before and after it (the XLogData header, the next message) are not cut off. */
  decode(message: Buffer, start = 0, end = message.length): PgoutputMessage {
    const tag = start < end ? message[start] : undefined;
    switch (tag) {
      case 0x42 /* B */:
        // LSN (8), commit time (8), xid (4)
        if (start + 21 > end) throw new Error('pgoutput message ends early');
        return {
          tag: 'begin',
          commitLsn: readUint64(message, start + 1),
          commitTimeMicros: readMicros(message, start + 9),
          xid: message.readUInt32BE(start + 17),
        };
      case 0x43 /* C */:
        // flags (1), commit LSN (8), end LSN (8), commit time (8)
        if (start + 26 > end) throw new Error('pgoutput message ends early');
        return { tag: 'commit', commitEndLsn: readUint64(message, start + 10) };
      case 0x52 /* R */:
        return { tag: 'relation', relation: this.relation(message, start, end) };
      case 0x49 /* I */:
        return this.insert(message, start, end);
      case 0x4d /* M */:
        return this.logicalMessage(message, start, end);
      case 0x59 /* Y */:
      case 0x4f /* O */:
      case 0x55 /* U */:
      case 0x44 /* D */:
      case 0x54 /* T */:
        return { tag: 'ignored', kind: String.fromCharCode(tag) };
      default:
        throw new Error(`unknown pgoutput message ${tag === undefined ? '(empty)' : String.fromCharCode(tag)}`);
    }
  }

  private relation(message: Buffer, start: number, end: number): Relation {
    const reader = new Reader(message, start + 1, end);
    const oid = reader.uint32();
    const schema = reader.cstring();
    const name = reader.cstring();
    reader.skip(1); // replica identity
    const count = reader.int16();
    const columns: Relation['columns'] = [];
    for (let i = 0; i < count; i++) {
      reader.skip(1); // flags
      const column = reader.cstring();
      const typeOid = reader.uint32();
      reader.skip(4); // type modifier
      columns.push({ name: column, typeOid });
    }
    const relation = { oid, schema, name, columns };
    this.relations.set(oid, relation);
    return relation;
  }

  private insert(message: Buffer, start: number, end: number): PgoutputMessage {
    if (start + 8 > end) throw new Error('pgoutput message ends early');
    const oid = message.readUInt32BE(start + 1);
    const relation = this.relations.get(oid);
    if (!relation) throw new Error(`insert into relation ${oid}, which no Relation message described`);
    let at = start + 6; // tag, oid, 'N'
    const count = message.readInt16BE(at);
    at += 2;
    // Each column's start and length (-1: null), not a Buffer view each (row-values.ts).
    const spans: number[] = new Array(2 * count);
    for (let i = 0; i < count; i++) {
      const kind = at < end ? message[at++] : undefined;
      if (kind === 0x74 /* t */ || kind === 0x62 /* b */) {
        if (at + 4 > end) throw new Error('pgoutput message ends early');
        const length = message.readUInt32BE(at);
        at += 4;
        if (at + length > end) throw new Error('pgoutput message ends early');
        spans[2 * i] = at;
        spans[2 * i + 1] = length;
        at += length;
      } else {
        // 'n' null; 'u' unchanged TOAST cannot occur in an insert
        if (kind === undefined) throw new Error('pgoutput message ends early');
        spans[2 * i] = at;
        spans[2 * i + 1] = -1;
      }
    }
    return { tag: 'insert', relation, values: new WalTuple(message, spans) };
  }

  private logicalMessage(message: Buffer, start: number, end: number): PgoutputMessage {
    const reader = new Reader(message, start + 1, end);
    const flags = reader.byte();
    const messageLsn = reader.uint64();
    const prefix = reader.cstring();
    const content = reader.bytes(reader.uint32());
    return { tag: 'message', transactional: (flags & 1) === 1, messageLsn, prefix, content };
  }
}

/**
 * An unsigned 64-bit big-endian integer (an LSN) as one BigInt: Buffer's
 * readBigUInt64BE makes four (each half, a shift and a sum), three of them
 * garbage at once, and a 1-row transaction reads two LSNs. Below 2^53, which
 * is 8 PiB of WAL, a double holds the value exactly.
 */
function readUint64(buffer: Buffer, at: number): bigint {
  const high = buffer.readUInt32BE(at);
  if (high >= 0x20_0000) return buffer.readBigUInt64BE(at);
  return BigInt(high * TWO_TO_32 + buffer.readUInt32BE(at + 4));
}

/** A pgoutput timestamp (signed microseconds since 2000-01-01) as microseconds since the Unix epoch, as one BigInt. */
function readMicros(buffer: Buffer, at: number): bigint {
  const micros = buffer.readInt32BE(at) * TWO_TO_32 + buffer.readUInt32BE(at + 4) + POSTGRES_EPOCH_MICROS;
  if (Number.isSafeInteger(micros)) return BigInt(micros);
  return buffer.readBigInt64BE(at) + BigInt(POSTGRES_EPOCH_MICROS);
}

// LSNs stay bigint (@walnut/schema's Lsn) from here on; text only at the edges (formatLsn).
/** Reads `buffer[offset, end)` in order; a read past `end` throws. */
class Reader {
  constructor(
    private readonly buffer: Buffer,
    private offset: number,
    private readonly end: number,
  ) {}

  byte(): number {
    return this.buffer.readUInt8(this.advance(1));
  }

  int16(): number {
    return this.buffer.readInt16BE(this.advance(2));
  }

  uint32(): number {
    return this.buffer.readUInt32BE(this.advance(4));
  }

  uint64(): bigint {
    return this.buffer.readBigUInt64BE(this.advance(8));
  }

  skip(n: number): void {
    this.advance(n);
  }

  bytes(n: number): Buffer {
    const at = this.advance(n);
    return this.buffer.subarray(at, at + n);
  }

  cstring(): string {
    const end = this.buffer.indexOf(0, this.offset);
    if (end < 0 || end >= this.end) throw new Error('pgoutput message ends inside a string');
    const text = this.buffer.toString('utf8', this.offset, end);
    this.offset = end + 1;
    return text;
  }

  /** Moves past `n` bytes; where they start. */
  private advance(n: number): number {
    const at = this.offset;
    if (at + n > this.end) throw new Error('pgoutput message ends early');
    this.offset = at + n;
    return at;
  }
}
