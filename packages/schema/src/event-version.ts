import { type Lsn, parseLsn } from './lsn.ts';

/**
 * The version of a KV event follows commit order: the commit LSN of the
 * transaction that wrote it, then the event's position inside that transaction.
 * Commit LSNs are unique per transaction and grow in commit order, unlike the
 * LSN of the insert itself (two concurrent transactions can commit in the
 * opposite order of their inserts).
 *
 * Packed as `commitLsn * 2^32 + seq` so one numeric column compares in order.
 */
export function eventVersion(commitLsn: Lsn | string, seq: number): bigint {
  const lsn = typeof commitLsn === 'string' ? parseLsn(commitLsn) : commitLsn;
  if (!Number.isInteger(seq) || seq < 0 || seq > 0xffffffff) {
    throw new RangeError(`event sequence out of range: ${seq}`);
  }
  return (lsn << 32n) + BigInt(seq);
}
