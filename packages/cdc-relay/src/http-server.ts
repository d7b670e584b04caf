import type { Server } from 'node:http';
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
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
  const app = new Hono();
  app.get('/', (c) => c.html(STATUS_PAGE));
  app.get('/status.json', async (c) => c.json(await probes.status()));
  app.get('/health', (c) => c.json({ status: 'ok' }));
  app.get('/ready', (c) => {
    const ready = probes.ready();
    return c.json({ status: ready ? 'ready' : 'not ready' }, ready ? 200 : 503);
  });
  app.get('/metrics', async (c) => {
    try {
      await probes.beforeScrape();
    } catch {
      // A scrape during a Postgres outage still returns every other metric.
    }
    return c.body(await metrics.registry.metrics(), 200, { 'content-type': metrics.registry.contentType });
  });
  return app;
}

export function startHttpServer(port: number, host: string, metrics: RelayMetrics, probes: Probes): Promise<Server> {
  const app = httpApp(metrics, probes);
  return new Promise((resolve, reject) => {
    const server = serve({ fetch: app.fetch, port, hostname: host }, () => resolve(server as Server));
    server.once('error', reject);
  });
}
