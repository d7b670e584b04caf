/**
 * A row's column values: each column's text bytes (or null), in its
 * relation's column order. The outbox mapper copies the few columns a record
 * keeps straight into the record's bytes (copyTo), so a row from the WAL
 * makes no Buffer per column: a Buffer view costs a JS object that the
 * garbage collector then pays for, and an outbox row has eight columns or so,
 * most of which no record reads. column() makes a view on demand, for the
 * rare paths (bytea, topic templates, the plain mapper).
 */
export interface RowValues {
  /** Column `i`'s bytes, as a view valid as long as the row's bytes; null for SQL NULL or a column the row lacks. */
  column(i: number): Buffer | null;
  /** Column `i`'s length in bytes; -1 for SQL NULL or a column the row lacks. */
  byteLength(i: number): number;
  /** Copies column `i`'s bytes into `target` at `offset` (nothing for null); returns the offset after them. */
  copyTo(i: number, target: Buffer, offset: number): number;
  /** Whether column `i` holds exactly `bytes` (false for null). */
  equals(i: number, bytes: Uint8Array): boolean;
}

/**
 * A tuple as pgoutput sent it, read in place: `spans` holds each column's
 * start and length (-1: null) in `message`, whose bytes the stream may
 * overwrite at its next socket read (pgoutput.ts).
 */
export class WalTuple implements RowValues {
  constructor(
    private readonly message: Buffer,
    private readonly spans: number[],
  ) {}

  column(i: number): Buffer | null {
    const length = this.byteLength(i);
    if (length < 0) return null;
    const start = this.spans[2 * i] as number;
    return this.message.subarray(start, start + length);
  }

  byteLength(i: number): number {
    return i < 0 || 2 * i >= this.spans.length ? -1 : (this.spans[2 * i + 1] as number);
  }

  copyTo(i: number, target: Buffer, offset: number): number {
    const length = this.byteLength(i);
    if (length <= 0) return offset;
    const start = this.spans[2 * i] as number;
    return copyBytes(this.message, start, length, target, offset);
  }

  equals(i: number, bytes: Uint8Array): boolean {
    const length = this.byteLength(i);
    if (length !== bytes.length) return false;
    const start = this.spans[2 * i] as number;
    return this.message.compare(bytes, 0, length, start, start + length) === 0;
  }
}

/** Below this many bytes a loop beats Buffer#copy, which makes a view of its source (node 20) for the collector. */
const SHORT_COPY = 64;

/** Copies `length` bytes of `source` from `start` into `target` at `offset`; returns the offset after them. */
export function copyBytes(source: Buffer, start: number, length: number, target: Buffer, offset: number): number {
  if (length >= SHORT_COPY) return offset + source.copy(target, offset, start, start + length);
  for (let i = 0; i < length; i++) target[offset + i] = source[start + i] as number;
  return offset + length;
}

/** Values already apart (a snapshot page's, a test's). */
export class BufferRow implements RowValues {
  constructor(private readonly values: ReadonlyArray<Buffer | null>) {}

  column(i: number): Buffer | null {
    return i < 0 ? null : (this.values[i] ?? null);
  }

  byteLength(i: number): number {
    return this.column(i)?.length ?? -1;
  }

  copyTo(i: number, target: Buffer, offset: number): number {
    const value = this.column(i);
    return value ? offset + value.copy(target, offset) : offset;
  }

  equals(i: number, bytes: Uint8Array): boolean {
    const value = this.column(i);
    return value?.equals(bytes) ?? false;
  }
}
