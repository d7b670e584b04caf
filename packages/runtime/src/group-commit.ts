export interface GroupCommitOptions<T> {
  /** Shared commits running at once; what arrives meanwhile queues for the next one. */
  maxConcurrentCommits: number;
  /** Most weight (outbox rows, events) in one shared commit. */
  maxWeightPerCommit: number;
  weight(item: T): number;
}

interface Queued<T> {
  item: T;
  resolve(): void;
  reject(error: unknown): void;
}

/**
 * Group commit: items submitted in the same turn of the event loop, or while
 * every commit slot is busy, go to the database in one transaction (one WAL
 * flush) instead of one each. A lone item that finds a slot free waits only
 * until the turn ends.
 *
 * Each item still resolves only after the commit that holds it, and a failed
 * shared commit is retried one item per commit, in submission order, so an item
 * Postgres refuses fails alone and the others go on.
 */
export class GroupCommit<T> {
  private readonly queue: Queued<T>[] = [];
  private committing = 0;
  private flushScheduled = false;

  constructor(
    private readonly commit: (items: readonly T[]) => Promise<void>,
    private readonly options: GroupCommitOptions<T>,
  ) {}

  /** Resolves once `item` is committed, alone or with others. */
  submit(item: T): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      this.scheduleFlush();
    });
  }

  /** Items queued or in a commit now. */
  get pending(): number {
    return this.queue.length + this.committing;
  }

  // After the current I/O callbacks: what the same socket reads (requests, the
  // partitions of one Kafka fetch) start in one turn and share a commit.
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
      const group = this.take();
      this.committing++;
      void this.commitGroup(group).finally(() => {
        this.committing--;
        this.flush();
      });
    }
  }

  /** At least one item, however heavy; then more while they fit. */
  private take(): Queued<T>[] {
    let weight = 0;
    let n = 0;
    while (n < this.queue.length) {
      const next = this.options.weight((this.queue[n] as Queued<T>).item);
      if (n > 0 && weight + next > this.options.maxWeightPerCommit) break;
      weight += next;
      n++;
    }
    return this.queue.splice(0, n);
  }

  private async commitGroup(group: Queued<T>[]): Promise<void> {
    try {
      await this.commit(group.map((q) => q.item));
      for (const q of group) q.resolve();
      return;
    } catch (error) {
      if (group.length === 1) {
        group[0]?.reject(error);
        return;
      }
    }
    // Nothing of the shared commit landed: each item alone, so the error (if it
    // was one item's) reaches only that item.
    for (const q of group) {
      try {
        await this.commit([q.item]);
        q.resolve();
      } catch (error) {
        q.reject(error);
      }
    }
  }
}
