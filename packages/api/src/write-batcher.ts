import { randomUUID } from 'node:crypto';
import type { NodePgDatabase } from 'drizzle-orm/node-postgres';
import { commitWrites, type PlainWrite, type WriteOp } from './commit-write.ts';

export interface WriteBatcherOptions {
  /** Transactions committing at once; the rest of the writes wait and join the next one. */
  maxConcurrentCommits: number;
  /** Most outbox rows in one shared transaction. */
  maxOpsPerCommit: number;
}

interface Queued extends PlainWrite {
  resolve(): void;
  reject(error: unknown): void;
}

/**
 * Group commit for writes without an Idempotency-Key. A write that finds a
 * commit slot free starts its own transaction at once, so a lone write waits
 * for nothing; writes that arrive while every slot is committing queue and go
 * together in the next transaction. Under load, one commit (and one fsync)
 * then carries many writes, which is where Postgres's time per write goes.
 *
 * Each write still answers only after its transaction committed, keeps its own
 * request id and rows, and a failed shared transaction is retried one write
 * per transaction, so one write that Postgres refuses fails alone.
 */
export class WriteBatcher {
  private readonly queue: Queued[] = [];
  private committing = 0;
  private flushScheduled = false;

  constructor(
    private readonly commit: (writes: readonly PlainWrite[]) => Promise<void>,
    private readonly options: WriteBatcherOptions,
  ) {}

  static forDatabase(db: NodePgDatabase, options: WriteBatcherOptions): WriteBatcher {
    return new WriteBatcher((writes) => commitWrites(db, writes), options);
  }

  /** Resolves with the write's request id once its transaction has committed. */
  submit(ops: readonly WriteOp[], traceparent?: string): Promise<string> {
    const requestId = randomUUID();
    return new Promise<string>((resolve, reject) => {
      this.queue.push({ requestId, ops, traceparent, resolve: () => resolve(requestId), reject });
      this.scheduleFlush();
    });
  }

  /** Writes queued or in a transaction now. */
  get pending(): number {
    return this.queue.length + this.committing;
  }

  // After the current I/O callbacks: requests parsed from the same socket reads
  // join one transaction instead of each taking a slot.
  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      this.flush();
    });
  }

  private flush(): void {
    while (this.committing < this.options.maxConcurrentCommits && this.queue.length > 0) {
      const batch = this.take();
      this.committing++;
      void this.commitBatch(batch).finally(() => {
        this.committing--;
        this.flush();
      });
    }
  }

  /** At least one write, however many ops it has; then more while they fit. */
  private take(): Queued[] {
    let ops = 0;
    let n = 0;
    while (n < this.queue.length) {
      const next = this.queue[n] as Queued;
      if (n > 0 && ops + next.ops.length > this.options.maxOpsPerCommit) break;
      ops += next.ops.length;
      n++;
    }
    return this.queue.splice(0, n);
  }

  private async commitBatch(batch: Queued[]): Promise<void> {
    try {
      await this.commit(batch);
      for (const write of batch) write.resolve();
      return;
    } catch (error) {
      if (batch.length === 1) {
        batch[0]?.reject(error);
        return;
      }
    }
    // Nothing of the shared transaction committed: each write alone, so the
    // error (if it was one write's) reaches only that write.
    for (const write of batch) {
      try {
        await this.commit([write]);
        write.resolve();
      } catch (error) {
        write.reject(error);
      }
    }
  }
}
