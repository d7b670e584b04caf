/**
 * When the session sends Postgres a standby status update: the reply on the
 * replication connection that confirms the LSN (not the relay's status page,
 * not a standby relay). On a timer, so wal_sender_timeout never fires while
 * Kafka is down and the WAL reader is paused; and soon after acks, at most
 * every `gapMs`, because what is acked but unreported is what a crash replays
 * as duplicates. What is reported is the ack tracker's business, not this file's.
 */
export class StandbyStatusUpdates {
  private timer: NodeJS.Timeout | null = null;
  private trailing: NodeJS.Timeout | null = null;
  private lastAt = 0;

  constructor(
    private readonly send: () => void,
    private readonly intervalMs: number,
    private readonly gapMs = 50,
  ) {}

  start(): void {
    this.timer ??= setInterval(() => this.now(), this.intervalMs);
  }

  /** After acks: now, or at the end of the current gap. */
  soon(): void {
    const sinceMs = performance.now() - this.lastAt;
    if (sinceMs >= this.gapMs) {
      this.now();
      return;
    }
    // Trailing report: the last acks of a burst must not wait for the timer.
    this.trailing ??= setTimeout(() => {
      this.trailing = null;
      this.now();
    }, this.gapMs - sinceMs);
  }

  now(): void {
    this.lastAt = performance.now();
    this.send();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    if (this.trailing) clearTimeout(this.trailing);
    this.timer = null;
    this.trailing = null;
  }
}

/**
 * At most a third of the server's wal_sender_timeout: while the WAL reader is paused
 * (Kafka slow, or the session still fencing) the timer's reports are the only replies
 * the walsender gets, and at the timeout it ends the connection (and a standby takes over).
 */
export function statusIntervalFor(configuredMs: number, walSenderTimeoutMs: number): number {
  return walSenderTimeoutMs > 0
    ? Math.min(configuredMs, Math.max(100, Math.floor(walSenderTimeoutMs / 3)))
    : configuredMs;
}
