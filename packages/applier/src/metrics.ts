import { collectProcessMetrics } from '@walnut/runtime';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';

/** Per-partition end and committed offsets, read from Kafka at scrape time. */
export type LagReader = () => Promise<Array<{ partition: number; lag: number }>>;

/** What the applier exposes on /metrics. Names follow Prometheus conventions. */
export class ApplierMetrics {
  readonly registry = new Registry();

  readonly eventsApplied = new Counter({
    name: 'walnut_applier_events_total',
    help: 'Decoded KV events applied (including ones the version guard found stale), by op.',
    labelNames: ['op'],
    registers: [this.registry],
  });

  readonly deadLettered = new Counter({
    name: 'walnut_applier_dead_lettered_total',
    help: 'Poison records sent to the dead-letter topic.',
    registers: [this.registry],
  });

  readonly requestsApplied = new Counter({
    name: 'walnut_applier_requests_applied_total',
    help: 'Requests marked applied.',
    registers: [this.registry],
  });

  readonly batchSeconds = new Histogram({
    name: 'walnut_applier_batch_seconds',
    help: 'Time to apply one batch: decode, dead-letter, DB transaction, offset commit.',
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });

  readonly outboxDeleted = new Counter({
    name: 'walnut_applier_outbox_deleted_total',
    help: 'Outbox rows deleted by the retention sweep.',
    registers: [this.registry],
  });

  readonly lag: Gauge<'partition'>;

  constructor(readLag: LagReader, onLagError: (error: unknown) => void) {
    this.lag = new Gauge({
      name: 'walnut_applier_lag_records',
      help: "Records between the consumer group's committed offset and the end of the topic, per partition.",
      labelNames: ['partition'],
      registers: [this.registry],
      async collect() {
        try {
          const lags = await readLag();
          this.reset();
          for (const { partition, lag } of lags) this.set({ partition: String(partition) }, lag);
        } catch (error) {
          // A scrape during a Kafka outage still returns every other metric; the
          // lag series disappear rather than showing stale numbers.
          this.reset();
          onLagError(error);
        }
      },
    });
    collectProcessMetrics(this.registry, 'walnut_applier_');
  }
}
