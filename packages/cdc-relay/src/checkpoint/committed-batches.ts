/**
 * Reads a partition's log the way a read_committed consumer sees it, from the
 * record batches alone. Pure: fed batches in offset order, it returns each
 * data batch once its transaction is known to have committed.
 *
 * Why not the fetch response's aborted-transaction list (what Kafka's own
 * consumer uses): @platformatic/kafka 1.35.0 applies it for read_committed
 * fetches keyed by producer id only, so with a transactional id that keeps its
 * producer id across sessions (the relay's) aborted records of an earlier
 * transaction leak through, and a range cut by the response's size limit is
 * kept whole. Reading uncommitted and deciding by the markers is exact:
 * a producer id has at most one open transaction, and its commit or abort
 * marker (KIP-98 control batch) decides every batch it wrote since its last
 * marker. Batches still waiting for a marker are not committed (yet).
 */
export interface LogBatch {
  attributes: number;
  producerId: bigint;
  records: ReadonlyArray<{ key: Buffer | null }>;
}

const TRANSACTIONAL = 0x10;
const CONTROL = 0x20;
const COMMIT_MARKER = 1;

export class CommittedBatches<B extends LogBatch> {
  private readonly open = new Map<bigint, B[]>();

  /** The data batches this batch settles as committed (often none, or itself). */
  push(batch: B): B[] {
    if (!(batch.attributes & TRANSACTIONAL)) return [batch];
    const pending = this.open.get(batch.producerId);
    if (batch.attributes & CONTROL) {
      this.open.delete(batch.producerId);
      // A control record's key is version (int16) then type (int16): 0 abort, 1 commit.
      const committed = batch.records[0]?.key?.readInt16BE(2) === COMMIT_MARKER;
      return committed ? (pending ?? []) : [];
    }
    if (pending) pending.push(batch);
    else this.open.set(batch.producerId, [batch]);
    return [];
  }
}
