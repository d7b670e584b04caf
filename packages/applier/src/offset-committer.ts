export interface PartitionOffset {
  topic: string;
  partition: number;
  /** The next offset to read: one past the last applied record. */
  offset: string;
}

/**
 * Commits consumer offsets to Kafka beside the apply loop instead of in it.
 * An offset commit is a round trip to the group coordinator, often longer than
 * applying the batch; awaited after every batch, it was most of the applier's
 * share of end-to-end latency.
 *
 * Offsets are only handed over after their batch's transaction committed, so
 * a committed offset never runs ahead of `kvs`. One commit is in flight at a
 * time, carrying the newest offset of every partition; a commit that fails or
 * never happens (crash, rebalance) leaves Kafka's offset behind, which costs a
 * replay the version guard absorbs, never a lost event.
 */
export class OffsetCommitter {
  private readonly pending = new Map<string, PartitionOffset>();
  private inFlight: Promise<void> | null = null;
  /** The next commit's start, waiting for the interval to end or for a retry's delay. */
  private nextCommit: NodeJS.Timeout | null = null;
  private lastStartedAt = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly commit: (offsets: PartitionOffset[]) => Promise<void>,
    private readonly onError: (error: unknown) => void,
    private readonly retryDelayMs = 1_000,
    /**
     * Least time between the starts of two commits. Back to back, a commit followed
     * every applied fetch: at 200 writes/s, 60 commits a second, each a request the
     * broker writes to its offsets log. A later commit costs only a longer replay.
     */
    private readonly minIntervalMs = 0,
  ) {}

  /** Records that everything before `offset` is applied; committed soon after. */
  applied(offset: PartitionOffset): void {
    this.pending.set(`${offset.topic}/${offset.partition}`, offset);
    this.kick();
  }

  /** Commits what is pending now; for shutdown, before the consumer leaves the group. */
  async flush(): Promise<void> {
    this.cancelNextCommit();
    await this.inFlight;
    // The finished commit may have scheduled the next one after the interval: not now.
    this.cancelNextCommit();
    if (this.pending.size > 0) {
      this.kick(true);
      await this.inFlight;
    }
    // A failure during shutdown is not retried: the offsets stay behind, a replay.
    this.cancelNextCommit();
  }

  private cancelNextCommit(): void {
    if (this.nextCommit) clearTimeout(this.nextCommit);
    this.nextCommit = null;
  }

  private commitAfter(delayMs: number): void {
    this.nextCommit = setTimeout(() => {
      this.nextCommit = null;
      this.kick();
    }, delayMs);
  }

  private kick(now = false): void {
    if (this.inFlight || this.nextCommit || this.pending.size === 0) return;
    const waitMs = this.lastStartedAt + this.minIntervalMs - performance.now();
    if (!now && waitMs > 0) {
      this.commitAfter(waitMs);
      return;
    }
    this.lastStartedAt = performance.now();
    const offsets = [...this.pending.values()];
    this.pending.clear();
    this.inFlight = this.commit(offsets).then(
      () => {
        this.inFlight = null;
        this.kick();
      },
      (error: unknown) => {
        this.inFlight = null;
        // Newer offsets that arrived meanwhile win; the others go back.
        for (const o of offsets) {
          const key = `${o.topic}/${o.partition}`;
          if (!this.pending.has(key)) this.pending.set(key, o);
        }
        this.onError(error);
        this.commitAfter(this.retryDelayMs);
      },
    );
  }
}
