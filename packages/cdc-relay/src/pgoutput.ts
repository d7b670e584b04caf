/**
 * Decodes the pgoutput messages the relay acts on (protocol version 1,
 * https://www.postgresql.org/docs/current/protocol-logicalrep-message-formats.html).
 * Pure: a message buffer in, a tagged value out.
 *
 * Why not pg-logical-replication's parser: it decodes every column to a
 * string (and through node-postgres' type parsers), so a payload went bytes →
 * string → bytes on its way to Kafka, and it formats LSNs as text and builds objects
 * for messages the relay ignores. Here a tuple's values (and a logical message's
 * content) stay bytes, as views into the message itself, with no copy: they are
 * valid only until the stream's next socket read, whose bytes pg-protocol may
 * write over them. That is long enough: pg-logical-replication (flow control on)
 * pauses the socket while any decoded message waits in its queue, and the
 * relay maps each message into a record of its own bytes (wire-record.ts,
 * message-mapping.ts) when it takes it from the queue. Whoever keeps a value
 * longer must copy it.
 */
import type { Lsn } from '@walnut/schema';

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
  | { tag: 'insert'; relation: Relation; values: Array<Buffer | null> }
  | { tag: 'message'; transactional: boolean; messageLsn: Lsn; prefix: string; content: Buffer }
  /** Type, origin, update, delete, truncate: nothing the relay relays. */
  | { tag: 'ignored'; kind: string };

/** Microseconds between the Unix epoch and Postgres's (2000-01-01). */
const POSTGRES_EPOCH_MICROS = 946_684_800_000_000n;

export class PgoutputDecoder {
  private readonly relations = new Map<number, Relation>();

  decode(message: Buffer): PgoutputMessage {
    const tag = message[0];
    switch (tag) {
      case 0x42 /* B */:
        return {
          tag: 'begin',
          commitLsn: message.readBigUInt64BE(1),
          commitTimeMicros: message.readBigInt64BE(9) + POSTGRES_EPOCH_MICROS,
          xid: message.readUInt32BE(17),
        };
      case 0x43 /* C */:
        // flags (1), commit LSN (8), end LSN (8), commit time (8)
        return { tag: 'commit', commitEndLsn: message.readBigUInt64BE(10) };
      case 0x52 /* R */:
        return { tag: 'relation', relation: this.relation(message) };
      case 0x49 /* I */:
        return this.insert(message);
      case 0x4d /* M */:
        return this.logicalMessage(message);
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

  private relation(message: Buffer): Relation {
    const reader = new Reader(message, 1);
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

  private insert(message: Buffer): PgoutputMessage {
    const oid = message.readUInt32BE(1);
    const relation = this.relations.get(oid);
    if (!relation) throw new Error(`insert into relation ${oid}, which no Relation message described`);
    const reader = new Reader(message, 6); // tag, oid, 'N'
    const count = reader.int16();
    const values: Array<Buffer | null> = new Array(count);
    for (let i = 0; i < count; i++) {
      const kind = reader.byte();
      if (kind === 0x74 /* t */ || kind === 0x62 /* b */) values[i] = reader.bytes(reader.uint32());
      else values[i] = null; // 'n' null; 'u' unchanged TOAST cannot occur in an insert
    }
    return { tag: 'insert', relation, values };
  }

  private logicalMessage(message: Buffer): PgoutputMessage {
    const reader = new Reader(message, 1);
    const flags = reader.byte();
    const messageLsn = reader.uint64();
    const prefix = reader.cstring();
    const content = reader.bytes(reader.uint32());
    return { tag: 'message', transactional: (flags & 1) === 1, messageLsn, prefix, content };
  }
}

// LSNs stay bigint (@walnut/schema's Lsn) from here on; text only at the edges (formatLsn).
class Reader {
  constructor(
    private readonly buffer: Buffer,
    private offset: number,
  ) {}

  byte(): number {
    return this.buffer.readUInt8(this.offset++);
  }

  int16(): number {
    const value = this.buffer.readInt16BE(this.offset);
    this.offset += 2;
    return value;
  }

  uint32(): number {
    const value = this.buffer.readUInt32BE(this.offset);
    this.offset += 4;
    return value;
  }

  uint64(): bigint {
    const value = this.buffer.readBigUInt64BE(this.offset);
    this.offset += 8;
    return value;
  }

  skip(n: number): void {
    this.offset += n;
  }

  bytes(n: number): Buffer {
    if (this.offset + n > this.buffer.length) throw new Error('pgoutput message ends early');
    const view = this.buffer.subarray(this.offset, this.offset + n);
    this.offset += n;
    return view;
  }

  cstring(): string {
    const end = this.buffer.indexOf(0, this.offset);
    if (end < 0) throw new Error('pgoutput message ends inside a string');
    const text = this.buffer.toString('utf8', this.offset, end);
    this.offset = end + 1;
    return text;
  }
}
