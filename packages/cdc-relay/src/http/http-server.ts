import type { Server } from 'node:http';
import { opsApp, serveHttp } from '@walnut/runtime';
import type { Hono } from 'hono';
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
export function httpApp(metrics: RelayMetrics, probes: Probes): Hono {
  const app = opsApp({
    registry: metrics.registry,
    ready: () => probes.ready(),
    beforeScrape: () => probes.beforeScrape(),
  });
  app.get('/', (c) => c.html(STATUS_PAGE));
  app.get('/status.json', async (c) => c.json(await probes.status()));
  return app;
}

export function startHttpServer(port: number, host: string, metrics: RelayMetrics, probes: Probes): Promise<Server> {
  return serveHttp(httpApp(metrics, probes), port, host);
}
