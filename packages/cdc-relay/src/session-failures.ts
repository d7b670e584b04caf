import { SessionBackoff } from './backoff.ts';
import { RelayError } from './errors.ts';

/**
 * A session that streamed this long (or RELAY_BACKOFF_MAX_MS, if longer) was
 * healthy: its failure starts the backoff over. One that fails sooner counts as
 * another failed attempt, so a fault that strikes right after `streaming` backs off.
 */
const HEALTHY_SESSION_MS = 30_000;

/**
 * Retryable, but only a human can fix them: shown as `blocked`, not `backoff`.
 * PUBLICATION_DRIFT: publication-check.ts. KAFKA_TOPIC_REFUSED: a topic Kafka
 * refuses to take records for (missing with auto-creation off, no ACL): tried
 * again at the backoff's cap, not as if it were transient.
 */
const BLOCKING_CODES: ReadonlySet<string> = new Set(['PUBLICATION_DRIFT', 'KAFKA_TOPIC_REFUSED']);

/** What the supervisor does before the next session: wait delayMs, shown as `state`. */
export interface Retry {
  state: 'backoff' | 'blocked';
  delayMs: number;
}

/**
 * How long the relay waits after a session failed with a retryable error
 * (other than a held slot a standby waits for), and whether it shows that as
 * `backoff` or `blocked`. Remembers, across sessions, how many failed in a row
 * (backoff.ts) and since when the slot has been held by another connection.
 */
export class SessionFailures {
  private readonly backoff: SessionBackoff;
  /** When the slot was first found held by another connection, in an unbroken run of such failures. */
  private slotBusySince: number | null = null;

  constructor(
    backoffMaxMs: number,
    private readonly slot: string,
  ) {
    this.backoff = new SessionBackoff({
      baseMs: 200,
      maxMs: backoffMaxMs,
      healthyMs: Math.max(HEALTHY_SESSION_MS, backoffMaxMs),
    });
  }

  /** A session is streaming: the failures before it are over. */
  streaming(): void {
    this.backoff.streaming();
    this.slotBusySince = null;
  }

  /** The wait after `failure`; throws (non-retryable) when the slot stayed held past slotBusyTimeoutMs. */
  retry(failure: RelayError, slotBusyTimeoutMs: number): Retry {
    const needsHuman = BLOCKING_CODES.has(failure.code);
    let delayMs = this.backoff.next({ atCap: failure.code === 'KAFKA_TOPIC_REFUSED' });
    if (failure.code === 'SLOT_IN_USE') {
      // Usually a predecessor that Postgres has not yet seen die: a SIGKILLed
      // relay's walsender stays active until it notices the closed socket. Held
      // for longer, it is a second relay on the same slot; a human must resolve that.
      this.slotBusySince ??= Date.now();
      const leftMs = this.slotBusySince + slotBusyTimeoutMs - Date.now();
      if (leftMs <= 0) throw this.slotBusyTooLong(failure, slotBusyTimeoutMs);
      delayMs = Math.min(delayMs, leftMs);
    } else {
      this.slotBusySince = null;
    }
    // A publication that does not publish the outbox (publication-check.ts) needs a human, but
    // the relay stays up saying so, checks again after each backoff, and streams once it is fixed.
    return { state: needsHuman ? 'blocked' : 'backoff', delayMs };
  }

  private slotBusyTooLong(failure: RelayError, slotBusyTimeoutMs: number): RelayError {
    return new RelayError(
      'SLOT_IN_USE',
      `another process still holds replication slot ${this.slot} after ${slotBusyTimeoutMs} ms (${failure.message}): stop that process, or give this relay its own RELAY_SLOT`,
      { retryable: false, cause: failure },
    );
  }
}
