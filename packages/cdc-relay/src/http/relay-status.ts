/**
 * What the relay's status page shows, kept in memory: state, the last error,
 * events acked per second over the last minutes, and recent sink (Kafka or
 * Redis) ack latencies. Fed by the relay's own callbacks; the slot's figures come from
 * Postgres when the page asks (see cli/run-command.ts).
 */
import type { SlotFigures } from '../slot-figures.ts';

export interface StatusSnapshot {
  slot: string;
  /** Where the records go (RELAY_SINK): kafka, redis or nats. */
  sink: string;
  state: string;
  stateSince: string;
  lastError: { code: string; message: string; at: string } | null;
  eventsTotal: number;
  /** Events acked in each of the last HISTORY_SECONDS seconds, oldest first. */
  eventsPerSecond: number[];
  ackLatencyMs: { p50: number | null; p99: number | null };
  inflight: { records: number; bytes: number };
  postgres: SlotFigures | null;
}

const HISTORY_SECONDS = 300;
const LATENCY_SAMPLES = 512;

export class RelayStatus {
  private state = 'connecting';
  private stateSince = new Date();
  private lastError: StatusSnapshot['lastError'] = null;
  private eventsTotal = 0;
  private readonly perSecond: number[] = new Array(HISTORY_SECONDS).fill(0);
  private currentSecond = Math.floor(Date.now() / 1000);
  private readonly latencies: number[] = [];
  private latencyNext = 0;

  constructor(
    readonly slot: string,
    readonly sink = 'kafka',
  ) {}

  onState(state: string, error?: { code: string; message: string }): void {
    if (state !== this.state) {
      this.state = state;
      this.stateSince = new Date();
    }
    if (error) this.lastError = { ...error, at: new Date().toISOString() };
  }

  onAcked(records: number, latencyMs: number): void {
    this.roll();
    this.eventsTotal += records;
    this.perSecond[HISTORY_SECONDS - 1] = (this.perSecond[HISTORY_SECONDS - 1] ?? 0) + records;
    if (this.latencies.length < LATENCY_SAMPLES) this.latencies.push(latencyMs);
    else this.latencies[this.latencyNext] = latencyMs;
    this.latencyNext = (this.latencyNext + 1) % LATENCY_SAMPLES;
  }

  snapshot(inflight: StatusSnapshot['inflight'], postgres: SlotFigures | null): StatusSnapshot {
    this.roll();
    const sorted = [...this.latencies].sort((a, b) => a - b);
    const at = (q: number) => (sorted.length ? (sorted[Math.floor(q * (sorted.length - 1))] as number) : null);
    return {
      slot: this.slot,
      sink: this.sink,
      state: this.state,
      stateSince: this.stateSince.toISOString(),
      lastError: this.lastError,
      eventsTotal: this.eventsTotal,
      eventsPerSecond: [...this.perSecond],
      ackLatencyMs: { p50: at(0.5), p99: at(0.99) },
      inflight,
      postgres,
    };
  }

  /** Shifts the per-second window up to now, so quiet seconds count as 0. */
  private roll(): void {
    const now = Math.floor(Date.now() / 1000);
    const steps = Math.min(now - this.currentSecond, HISTORY_SECONDS);
    for (let i = 0; i < steps; i++) {
      this.perSecond.shift();
      this.perSecond.push(0);
    }
    this.currentSecond = now;
  }
}
