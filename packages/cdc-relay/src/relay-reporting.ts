import { formatLsn, type Lsn } from '@walnut/schema';
import type { Logger } from 'pino';
import type { RelayMetrics } from './http/metrics.ts';
import type { RelayStatus } from './http/relay-status.ts';
import type { SessionObserver } from './replication-session.ts';

/**
 * What the relay tells the outside while it runs: its state (the status page,
 * the walnut_relay_state and walnut_relay_role gauges, a log line per change),
 * each session's acks and confirmations (metrics), and its progress in the log.
 */

const RELAY_STATES = ['connecting', 'standby', 'streaming', 'draining', 'backoff', 'blocked', 'stopped'] as const;
export type RelayState = (typeof RELAY_STATES)[number];

/** active: streams (or drains) the slot; standby: waits for it. Other states keep the last role. */
function roleOf(state: RelayState): 'active' | 'standby' | undefined {
  if (state === 'streaming' || state === 'draining') return 'active';
  if (state === 'standby') return 'standby';
  return undefined;
}

export interface RelayReporters {
  log: Logger;
  metrics?: RelayMetrics | undefined;
  status?: RelayStatus | undefined;
  /** Anything else that acts on a state change (the CLI's one collection after start-up). */
  onState?: ((state: RelayState) => void) | undefined;
}

/** Tells of a change to state `next`; fields.code and fields.error name what made the relay wait. */
export function reportState(to: RelayReporters, next: RelayState, fields: Record<string, unknown>): void {
  const code = typeof fields.code === 'string' ? fields.code : undefined;
  to.status?.onState(next, code ? { code, message: String(fields.error ?? '') } : undefined);
  if (to.metrics) {
    for (const state of RELAY_STATES) to.metrics.state.set({ state }, state === next ? 1 : 0);
    const role = roleOf(next);
    if (role) for (const r of ['active', 'standby'] as const) to.metrics.role.set({ role: r }, r === role ? 1 : 0);
  }
  to.log.info({ state: next, ...fields }, `relay ${next}`);
  to.onState?.(next);
}

export function sessionMetrics(metrics: RelayMetrics, status: RelayStatus | undefined): SessionObserver {
  return {
    onAcked(records: number, bytes: number, latencyMs: number) {
      status?.onAcked(records, latencyMs);
      metrics.eventsRelayed.inc(records);
      metrics.bytesRelayed.inc(bytes);
      metrics.ackLatency.observe(latencyMs / 1000);
    },
    onSent(requestsInFlight: number) {
      metrics.produceRequests.inc({ in_flight: String(requestsInFlight) });
    },
    onConfirmed(lsn: Lsn, inflight: number) {
      metrics.confirmedLsn.set(Number(lsn));
      metrics.inflightRecords.set(inflight);
    },
  };
}

/** A session's figures for the progress line. */
export interface SessionProgress {
  readonly confirmedLsn: Lsn;
  readonly ackedRecords: number;
  readonly inflightRecords: number;
}

/** One log line every 10 s while a session streams, and none while nothing moves. */
export class ProgressLog {
  private last = { confirmed: -1n, acked: -1 };

  constructor(private readonly log: Logger) {}

  /** Logs the session's progress every 10 s until it is done. */
  follow(session: SessionProgress & { readonly done: Promise<void> }): void {
    const progress = setInterval(() => this.tell(session), 10_000);
    session.done.finally(() => clearInterval(progress)).catch(() => {});
  }

  private tell(session: SessionProgress): void {
    const confirmed = session.confirmedLsn;
    const acked = session.ackedRecords;
    if (confirmed === this.last.confirmed && acked === this.last.acked) return;
    this.last = { confirmed, acked };
    this.log.info({ confirmedLsn: formatLsn(confirmed), acked, inflight: session.inflightRecords }, 'relay progress');
  }
}
