import { createServer, type Server } from 'node:http';
import type { RelayMetrics } from './metrics.ts';

export interface Probes {
  /** Streaming from the slot with a Kafka producer connected. */
  ready(): boolean;
  /** Refreshes gauges that need a query (slot lag) before a scrape. */
  beforeScrape(): Promise<void>;
}

/**
 * /health (the process answers), /ready (streaming, Kafka connected),
 * /metrics (Prometheus text format, rendered by prom-client).
 */
export function startHttpServer(port: number, host: string, metrics: RelayMetrics, probes: Probes): Promise<Server> {
  const server = createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://relay');
    if (req.method !== 'GET') {
      res.writeHead(405, { allow: 'GET' }).end();
      return;
    }
    switch (url.pathname) {
      case '/health':
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}');
        return;
      case '/ready': {
        const ready = probes.ready();
        res
          .writeHead(ready ? 200 : 503, { 'content-type': 'application/json' })
          .end(JSON.stringify({ status: ready ? 'ready' : 'not ready' }));
        return;
      }
      case '/metrics':
        try {
          await probes.beforeScrape();
        } catch {
          // A scrape during a Postgres outage still returns every other metric.
        }
        res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(await metrics.registry.metrics());
        return;
      default:
        res.writeHead(404).end();
    }
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve(server));
  });
}
