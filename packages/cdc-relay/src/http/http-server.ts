import type { Server } from 'node:http';
import { htmlResponse, jsonResponse, serveOps } from '@walnut/runtime';
import type { RelayMetrics } from './metrics.ts';
import type { StatusSnapshot } from './relay-status.ts';
import { STATUS_PAGE } from './status-page.ts';

export interface Probes {
  /** Streaming from the slot with a Kafka producer connected. */
  ready(): boolean;
  /** Refreshes gauges that need a query (slot lag) before a scrape. */
  beforeScrape(): Promise<void>;
  /** What the status page shows (queries Postgres for the slot's figures). */
  status(): Promise<StatusSnapshot>;
}

/**
 * / (the status page), /status.json (what it polls), /health (the process
 * answers), /ready (streaming, Kafka connected), /metrics (Prometheus text
 * format, rendered by prom-client).
 */
export function startHttpServer(port: number, host: string, metrics: RelayMetrics, probes: Probes): Promise<Server> {
  return serveOps(
    { registry: metrics.registry, ready: () => probes.ready(), beforeScrape: () => probes.beforeScrape() },
    port,
    host,
    { '/': () => htmlResponse(STATUS_PAGE), '/status.json': async () => jsonResponse(await probes.status()) },
  );
}
