import { randomUUID } from 'node:crypto';
import { GroupCommit } from '@walnut/runtime';
import type { NodePgDatabase } from 'drizzle-orm/node-postgres';
import { commitWrites, type PlainWrite, type WriteOp } from './commit-write.ts';

export interface WriteBatcherOptions {
  /** Transactions committing at once; the rest of the writes wait and join the next one. */
  maxConcurrentCommits: number;
  /** Most outbox rows in one shared transaction. */
  maxOpsPerCommit: number;
}

/**
 * Group commit for writes without an Idempotency-Key (GroupCommit). A write
 * that finds a commit slot free starts its own transaction once the turn ends,
 * so a lone write waits for nothing; writes that arrive while every slot is
 * committing queue and go together in the next transaction. Under load, one
 * commit (and one fsync) then carries many writes, which is where Postgres's
 * time per write goes.
 *
 * Each write still answers only after its transaction committed, keeps its own
 * request id and rows, and a failed shared transaction is retried one write
 * per transaction, so one write that Postgres refuses fails alone.
 */
export class WriteBatcher {
  private readonly group: GroupCommit<PlainWrite>;

  constructor(commit: (writes: readonly PlainWrite[]) => Promise<void>, options: WriteBatcherOptions) {
    this.group = new GroupCommit(commit, {
      maxConcurrentCommits: options.maxConcurrentCommits,
      maxWeightPerCommit: options.maxOpsPerCommit,
      weight: (write) => write.ops.length,
    });
  }

  static forDatabase(db: NodePgDatabase, options: WriteBatcherOptions): WriteBatcher {
    return new WriteBatcher((writes) => commitWrites(db, writes), options);
  }

  /** Resolves with the write's request id once its transaction has committed. */
  async submit(ops: readonly WriteOp[], traceparent?: string): Promise<string> {
    const requestId = randomUUID();
    await this.group.submit({ requestId, ops, traceparent });
    return requestId;
  }

  /** Writes queued or in a transaction now. */
  get pending(): number {
    return this.group.pending;
  }
}
