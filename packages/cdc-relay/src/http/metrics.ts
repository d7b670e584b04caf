import { collectProcessMetrics } from '@walnut/runtime';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { SlotFigures } from '../slot-figures.ts';

/** What the relay exposes on /metrics. Names follow Prometheus conventions (unit suffixes). */
export class RelayMetrics {
  readonly registry = new Registry();

  readonly eventsRelayed = new Counter({
    name: 'walnut_relay_events_total',
    help: 'Outbox events acked by the sink (walnut_relay_sink_info names it).',
    registers: [this.registry],
  });

  readonly bytesRelayed = new Counter({
    name: 'walnut_relay_payload_bytes_total',
    help: 'Payload bytes acked by the sink.',
    registers: [this.registry],
  });

  readonly ackLatency = new Histogram({
    name: 'walnut_relay_kafka_ack_seconds',
    help: 'Time from sending a produce request (Redis: a pipeline) to its ack; the name predates other sinks.',
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });

  readonly produceRequests = new Counter({
    name: 'walnut_relay_produce_requests_total',
    help: 'Produce requests sent, by how many were in flight once it was sent (itself included).',
    labelNames: ['in_flight'],
    registers: [this.registry],
  });

  /** Which sink the relay sends to (RELAY_SINK), as a label: 1 for the one in use. */
  readonly sinkInfo = new Gauge({
    name: 'walnut_relay_sink_info',
    help: 'The sink records go to (RELAY_SINK), as the label sink; always 1.',
    labelNames: ['sink'],
    registers: [this.registry],
  });

  readonly inflightRecords = new Gauge({
    name: 'walnut_relay_inflight_records',
    help: 'Records buffered or sent and not yet acked.',
    registers: [this.registry],
  });

  readonly reconnects = new Counter({
    name: 'walnut_relay_reconnects_total',
    help: 'Sessions that ended in an error and were retried, by error code.',
    labelNames: ['code'],
    registers: [this.registry],
  });

  readonly confirmedLsn = new Gauge({
    name: 'walnut_relay_confirmed_lsn',
    help: 'Last LSN confirmed to Postgres, as a number (exact below 2^53).',
    registers: [this.registry],
  });

  readonly slotQueries = new Counter({
    name: 'walnut_relay_slot_queries_total',
    help: "Queries sent for the slot's figures (/status.json and /metrics share one a second).",
    registers: [this.registry],
  });

  readonly slotLagBytes = new Gauge({
    name: 'walnut_relay_slot_lag_bytes',
    help: "WAL written since the slot's confirmed LSN, read from Postgres at scrape time.",
    registers: [this.registry],
  });

  readonly slotRetainedWalBytes = new Gauge({
    name: 'walnut_relay_slot_retained_wal_bytes',
    help: 'WAL Postgres keeps for the slot (current LSN minus restart_lsn), read at scrape time.',
    registers: [this.registry],
  });

  // Always present, so a rule dividing by it returns a series either way: with no limit the
  // ratio is 0 (a slot is never invalidated, the disk fills instead; slot lag covers that).
  readonly maxSlotWalKeepSizeBytes = new Gauge({
    name: 'walnut_relay_max_slot_wal_keep_size_bytes',
    help: "The server's max_slot_wal_keep_size, past which Postgres invalidates the slot; +Inf when unlimited (-1).",
    registers: [this.registry],
  });

  readonly role = new Gauge({
    name: 'walnut_relay_role',
    help: 'High availability: 1 for the role this relay last had (active streams the slot, standby waits for it).',
    labelNames: ['role'],
    registers: [this.registry],
  });

  readonly state = new Gauge({
    name: 'walnut_relay_state',
    help: 'Lifecycle state: 1 for the current one.',
    labelNames: ['state'],
    registers: [this.registry],
  });

  constructor() {
    collectProcessMetrics(this.registry, 'walnut_relay_');
  }

  /** The slot's gauges from figures read at scrape time; a figure Postgres left null keeps its last value. */
  observeSlot(slot: SlotFigures): void {
    if (slot.lagBytes !== null) this.slotLagBytes.set(slot.lagBytes);
    if (slot.retainedWalBytes !== null) this.slotRetainedWalBytes.set(slot.retainedWalBytes);
    this.maxSlotWalKeepSizeBytes.set(slot.maxSlotWalKeepBytes ?? Number.POSITIVE_INFINITY);
  }
}
