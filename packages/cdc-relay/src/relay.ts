/**
 * The relay's lifecycle. One ReplicationSession per connection; the supervisor
 * loop below replaces a failed session after a backoff.
 *
 *                   slot ready, streaming              stop()
 *  ┌────────────┐ ─────────────────────▶ ┌───────────┐ ───────▶ ┌──────────┐
 *  │ connecting │                        │ streaming │          │ draining │
 *  └────────────┘                        └───────────┘          └──────────┘
 *    │    │   ▲                            │       │                 │
 *    │ (1)│   │ delay elapsed         (1)  │       │ fatal (2)       │ acked, or timeout
 *    │    ▼   │                            │       ▼                 ▼
 *    │  ┌─────────┐ ◀──────────────────────┘   ┌───────────────────────────┐
 *    │  │ backoff │ ────────── stop() ───────▶ │          stopped          │
 *    │  └─────────┘                            └───────────────────────────┘
 *    │                                                       ▲
 *    └──────────────── fatal (2), or stop() ─────────────────┘
 *
 * (1) A retryable error. SLOT_IN_USE (another connection holds the slot) is
 *     retried for at most RELAY_SLOT_BUSY_TIMEOUT_MS, then it is fatal.
 * (2) run() rejects with a non-retryable RelayError; the CLI exits non-zero.
 */
import { formatLsn } from '@walnut/schema';
import { Kafka, logLevel, Partitioners, type Producer } from 'kafkajs';
import pg from 'pg';
import type { Logger } from 'pino';
import { backoffDelayMs } from './backoff.ts';
import type { RelayConfig } from './config.ts';
import { RelayError, toRelayError } from './errors.ts';
import type { RelayMetrics } from './metrics.ts';
import { ReplicationSession } from './replication-session.ts';
import { prepareSlot } from './slot.ts';

const RELAY_STATES = ['connecting', 'streaming', 'draining', 'backoff', 'stopped'] as const;
export type RelayState = (typeof RELAY_STATES)[number];

/** A stuck producer must not hold up the supervisor: give up waiting after ms. */
function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function sessionMetrics(metrics: RelayMetrics) {
  return {
    onAcked(records: number, bytes: number, latencyMs: number) {
      metrics.eventsRelayed.inc(records);
      metrics.bytesRelayed.inc(bytes);
      metrics.ackLatency.observe(latencyMs / 1000);
    },
    onConfirmed(lsn: bigint, inflight: number) {
      metrics.confirmedLsn.set(Number(lsn));
      metrics.inflightRecords.set(inflight);
    },
  };
}

export class Relay {
  private current: RelayState = 'connecting';
  private session: ReplicationSession | null = null;
  private stopping = false;
  private wakeBackoff: (() => void) | null = null;
  private readonly kafka: Kafka;

  constructor(
    private readonly config: RelayConfig,
    private readonly log: Logger,
    private readonly metrics?: RelayMetrics,
  ) {
    this.kafka = new Kafka({
      clientId: config.kafka.clientId,
      brokers: config.kafka.brokers,
      ssl: config.kafka.ssl,
      ...(config.kafka.sasl ? { sasl: config.kafka.sasl } : {}),
      logLevel: logLevel.WARN,
      logCreator: () => (entry) => {
        const { message, ...rest } = entry.log;
        this.log.warn({ kafka: rest, namespace: entry.namespace }, message);
      },
    });
  }

  /**
   * A fresh producer per session. Idempotent with one request in flight: the
   * broker drops retried duplicates and a retry can never reorder a partition.
   * Not reused after a failed session: after a broker restart a kafkajs
   * idempotent producer can keep retrying a batch the broker rejects (out of
   * order sequence) forever; a new producer id starts clean, and the session
   * replays everything unconfirmed from the slot in order.
   */
  private newProducer(): Producer {
    return this.kafka.producer({
      idempotent: true,
      maxInFlightRequests: 1,
      createPartitioner: Partitioners.DefaultPartitioner,
    });
  }

  get state(): RelayState {
    return this.current;
  }

  /** Resolves after a graceful stop(); rejects with a non-retryable RelayError. */
  async run(): Promise<void> {
    let attempt = 0;
    /** When the slot was first found held by another connection, in an unbroken run of such failures. */
    let slotBusySince: number | null = null;
    try {
      while (!this.stopping) {
        this.transition('connecting');
        const producer = this.newProducer();
        try {
          await producer.connect();
          const slot = await this.withClient((client) =>
            prepareSlot(client, {
              slot: this.config.slot,
              publication: this.config.publication,
              outbox: this.config.outbox,
            }),
          );
          if (slot.created) this.log.info({ slot: this.config.slot }, 'created replication slot');
          const session = new ReplicationSession(
            this.config,
            slot.confirmedFlushLsn,
            producer,
            this.log,
            this.metrics && sessionMetrics(this.metrics),
          );
          this.session = session;
          if (this.stopping) break;
          const progress = setInterval(() => this.logProgress(session), 10_000);
          session.done.finally(() => clearInterval(progress)).catch(() => {});
          await session.start();
          if (this.stopping) break;
          this.transition('streaming', { from: formatLsn(slot.confirmedFlushLsn) });
          attempt = 0;
          slotBusySince = null;
          await session.done;
        } catch (error) {
          const failure = toRelayError(error);
          if (!failure.retryable) throw failure;
          this.metrics?.reconnects.inc({ code: failure.code });
          if (this.stopping) break;
          let delayMs = backoffDelayMs(attempt++, { baseMs: 200, maxMs: this.config.backoffMaxMs });
          if (failure.code === 'SLOT_IN_USE') {
            // Usually a predecessor that Postgres has not yet seen die: a SIGKILLed
            // relay's walsender stays active until it notices the closed socket. Held
            // for longer, it is a second relay on the same slot; a human must resolve that.
            slotBusySince ??= Date.now();
            const leftMs = slotBusySince + this.config.slotBusyTimeoutMs - Date.now();
            if (leftMs <= 0) throw this.slotBusyTooLong(failure);
            delayMs = Math.min(delayMs, leftMs);
          } else {
            slotBusySince = null;
          }
          this.transition('backoff', { code: failure.code, error: failure.message, delayMs });
          await this.sleep(delayMs);
        } finally {
          await this.session?.stop(0).catch(() => {});
          this.session = null;
          await withTimeout(producer.disconnect(), 5_000).catch(() => {});
        }
      }
    } finally {
      this.transition('stopped');
    }
  }

  /** Graceful: stop reading WAL, wait (bounded) for acks, confirm, close. */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.wakeBackoff?.();
    const session = this.session;
    if (session) {
      if (this.current === 'streaming') this.transition('draining');
      await session.stop(this.config.shutdownTimeoutMs);
    }
  }

  private lastProgress = { confirmed: -1n, acked: -1 };

  private logProgress(session: ReplicationSession): void {
    const confirmed = session.confirmedLsn;
    const acked = session.ackedRecords;
    if (confirmed === this.lastProgress.confirmed && acked === this.lastProgress.acked) return;
    this.lastProgress = { confirmed, acked };
    this.log.info({ confirmedLsn: formatLsn(confirmed), acked, inflight: session.inflightRecords }, 'relay progress');
  }

  private slotBusyTooLong(failure: RelayError): RelayError {
    const { slot, slotBusyTimeoutMs } = this.config;
    return new RelayError(
      'SLOT_IN_USE',
      `another process still holds replication slot ${slot} after ${slotBusyTimeoutMs} ms (${failure.message}): stop that process, or give this relay its own RELAY_SLOT`,
      { retryable: false, cause: failure },
    );
  }

  /** Streaming with a live session: what /ready reports. */
  get ready(): boolean {
    return this.current === 'streaming' && this.session !== null;
  }

  private transition(next: RelayState, fields: Record<string, unknown> = {}): void {
    if (next === this.current && next !== 'backoff') return;
    this.current = next;
    if (this.metrics) {
      for (const state of RELAY_STATES) this.metrics.state.set({ state }, state === next ? 1 : 0);
    }
    this.log.info({ state: next, ...fields }, `relay ${next}`);
  }

  private async withClient<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
    const client = new pg.Client({ connectionString: this.config.databaseUrl });
    // An unreachable server must surface as a rejected connect(), not an uncaught 'error'.
    client.on('error', () => {});
    await client.connect();
    try {
      return await fn(client);
    } finally {
      await client.end().catch(() => {});
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.wakeBackoff = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }
}

export { RelayError };
