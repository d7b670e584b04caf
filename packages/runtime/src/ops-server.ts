import type { Server } from 'node:http';
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import type { Registry } from 'prom-client';

export interface OpsProbes {
  /** Metrics rendered by prom-client. */
  registry: Registry;
  /** /health: the process is doing its job (default: it answers). */
  healthy?(): boolean;
  /** /ready: it should get traffic or be counted as up (default: same as healthy). */
  ready?(): boolean;
  /** Refreshes gauges that need a query before a scrape; a failure still serves the rest. */
  beforeScrape?(): Promise<void>;
}

/**
 * /health, /ready and /metrics, the probes every runnable answers. A runnable
 * adds its own routes (the relay's status page) to the app it returns.
 */
export function opsApp(probes: OpsProbes): Hono {
  const app = new Hono();
  const probe = (ok: boolean, up: string, down: string) => ({ body: { status: ok ? up : down }, code: ok ? 200 : 503 });
  app.get('/health', (c) => {
    const { body, code } = probe(probes.healthy?.() ?? true, 'ok', 'unhealthy');
    return c.json(body, code as 200 | 503);
  });
  app.get('/ready', (c) => {
    const { body, code } = probe((probes.ready ?? probes.healthy)?.() ?? true, 'ready', 'not ready');
    return c.json(body, code as 200 | 503);
  });
  app.get('/metrics', async (c) => {
    try {
      await probes.beforeScrape?.();
    } catch {
      // A scrape during a Postgres outage still returns every other metric.
    }
    return c.body(await probes.registry.metrics(), 200, { 'content-type': probes.registry.contentType });
  });
  return app;
}

/** Serves a Hono app on host:port; rejects when the port cannot be taken. */
export function serveHttp(app: Hono, port: number, host: string): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = serve({ fetch: app.fetch, port, hostname: host }, () => resolve(server as Server));
    server.once('error', reject);
  });
}

/** The port a server listens on (the one the OS chose for port 0). */
export function listeningPort(server: Server): number | undefined {
  const address = server.address();
  return typeof address === 'object' && address ? address.port : undefined;
}
