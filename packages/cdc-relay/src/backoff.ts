/**
 * Capped exponential backoff with "equal jitter" (AWS architecture blog,
 * "Exponential Backoff And Jitter"): many relays restarting after one outage
 * spread out instead of reconnecting in lockstep, and, unlike full jitter, no
 * delay is under half its ceiling, so a fault that persists costs at most one
 * session per maxMs / 2 once the ceiling is reached.
 */
export function backoffDelayMs(
  attempt: number,
  opts: { baseMs: number; maxMs: number },
  random: () => number = Math.random,
): number {
  const ceiling = Math.min(opts.maxMs, opts.baseMs * 2 ** Math.min(attempt, 30));
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}

export interface SessionBackoffOptions {
  baseMs: number;
  /** RELAY_BACKOFF_MAX_MS. */
  maxMs: number;
  /** How long a session must stream before its failure starts the backoff over. */
  healthyMs: number;
}

/**
 * When the supervisor starts the next session. Reaching `streaming` is not
 * success: a fault that strikes each session a moment later (a row Kafka
 * refuses, a walsender killed on sight) restarted the relay every 150-400 ms
 * when every `streaming` reset the attempts (issue 24). Only a session that
 * streamed for healthyMs does, so one blip after hours of streaming still
 * reconnects within baseMs.
 */
export class SessionBackoff {
  private attempt = 0;
  private streamingSince: number | null = null;

  constructor(
    private readonly options: SessionBackoffOptions,
    private readonly now: () => number = Date.now,
    private readonly random: () => number = Math.random,
  ) {}

  /** The session reached `streaming`. */
  streaming(): void {
    this.streamingSince = this.now();
  }

  /**
   * The wait after a failed session. `atCap`: the cause is one a human must fix
   * (a topic Kafka refuses), so there is no point trying again soon.
   */
  next(opts: { atCap?: boolean } = {}): number {
    if (this.streamingSince !== null && this.now() - this.streamingSince >= this.options.healthyMs) this.attempt = 0;
    this.streamingSince = null;
    if (opts.atCap)
      this.attempt = Math.max(this.attempt, Math.ceil(Math.log2(this.options.maxMs / this.options.baseMs)));
    return backoffDelayMs(this.attempt++, this.options, this.random);
  }
}
