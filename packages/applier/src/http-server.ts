import { createServer, type Server } from 'node:http';
import type { Registry } from 'prom-client';

/**
 * /health (the consumer is running) and /metrics (Prometheus text format,
 * rendered by prom-client) on a small port of their own.
 */
export function startHttpServer(opts: {
  port: number;
  host: string;
  registry: Registry;
  healthy: () => boolean;
}): Promise<Server> {
  const server = createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://applier');
    if (req.method !== 'GET') {
      res.writeHead(405, { allow: 'GET' }).end();
      return;
    }
    switch (url.pathname) {
      case '/health': {
        const ok = opts.healthy();
        res
          .writeHead(ok ? 200 : 503, { 'content-type': 'application/json' })
          .end(JSON.stringify({ status: ok ? 'ok' : 'not consuming' }));
        return;
      }
      case '/metrics':
        res.writeHead(200, { 'content-type': opts.registry.contentType }).end(await opts.registry.metrics());
        return;
      default:
        res.writeHead(404).end();
    }
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => resolve(server));
  });
}
