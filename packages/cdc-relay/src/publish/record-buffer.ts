import type { KafkaRecord } from '../kafka-record.ts';
import { batchBytes } from './record-rules.ts';

/** A pushed record waiting for its request. */
export interface Pending<Token> {
  record: KafkaRecord;
  token: Token;
  /** `sealed` mode: the last record of a group (no later one joins its request). */
  endsGroup: boolean;
}

/**
 * The batcher's rule: which buffered records the next produce request takes.
 * At least one, at most maxBatchRecords, their batch (headers and batch
 * overhead counted, record-rules.ts) within maxBatchBytes, and never past the
 * end of a sealed group, whose transaction commits after it.
 */
export class RecordBuffer<Token> {
  private pending: Array<Pending<Token>> = [];
  /** Encoded bytes of the buffered records. */
  private bytes = 0;

  constructor(private readonly caps: { maxBatchRecords: number; maxBatchBytes: number }) {}

  get length(): number {
    return this.pending.length;
  }

  /** Adds a record; true when a full request's worth is buffered. */
  add(record: KafkaRecord, token: Token): boolean {
    this.pending.push({ record, token, endsGroup: false });
    this.bytes += record.sizeBytes;
    return this.pending.length >= this.caps.maxBatchRecords || batchBytes(this.bytes) > this.caps.maxBatchBytes;
  }

  /** Ends the group at the last buffered record; false when none is buffered. */
  endGroup(): boolean {
    const last = this.pending.at(-1);
    if (last) last.endsGroup = true;
    return last !== undefined;
  }

  /** How many buffered records the next request takes. */
  nextLength(): number {
    let bytes = 0;
    let count = 0;
    for (const { record, endsGroup } of this.pending) {
      if (count >= this.caps.maxBatchRecords) break;
      bytes += record.sizeBytes;
      if (count > 0 && batchBytes(bytes) > this.caps.maxBatchBytes) break;
      count++;
      if (endsGroup) break;
    }
    return count;
  }

  /** Whether a request of the first `length` records is as large as it may be: no later record can join it. */
  isFull(length: number): boolean {
    if (length >= this.caps.maxBatchRecords) return true;
    // nextLength stopped short of the whole buffer only at the byte cap or a group's end.
    return length < this.pending.length || (this.pending[length - 1] as Pending<Token>).endsGroup;
  }

  /** Takes the first `length` records, and their encoded bytes. */
  take(length: number): { batch: Array<Pending<Token>>; bytes: number } {
    const batch = this.pending.splice(0, length);
    let bytes = 0;
    for (const { record } of batch) bytes += record.sizeBytes;
    this.bytes -= bytes;
    return { batch, bytes };
  }

  clear(): void {
    this.pending = [];
    this.bytes = 0;
  }
}
