import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Registry } from 'prom-client';
import { errorEnvelope } from './errors.ts';

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

export interface OpsResponse {
  status: number;
  contentType: string;
  body: string;
}

/** A GET route a runnable adds to the probes (the relay's status page). */
export type OpsRoute = () => OpsResponse | Promise<OpsResponse>;

export const jsonResponse = (value: unknown, status = 200): OpsResponse => ({
  status,
  contentType: 'application/json',
  body: JSON.stringify(value),
});

export const htmlResponse = (html: string): OpsResponse => ({
  status: 200,
  contentType: 'text/html; charset=UTF-8',
  body: html,
});

/**
 * /health, /ready and /metrics, the probes every runnable answers, plus the runnable's own
 * routes, on node:http. Not Hono, as the API is: @hono/node-server reads the global Request,
 * which loads node's fetch (undici) and compiles its HTTP parser's WebAssembly, 9 MiB of an
 * idle relay's resident memory for a handful of GETs (docs/decisions/relay-memory.md).
 */
function opsRoutes(probes: OpsProbes, routes: Record<string, OpsRoute> = {}): Map<string, OpsRoute> {
  const probe = (ok: boolean, up: string, down: string) => jsonResponse({ status: ok ? up : down }, ok ? 200 : 503);
  return new Map<string, OpsRoute>([
    ['/health', () => probe(probes.healthy?.() ?? true, 'ok', 'unhealthy')],
    ['/ready', () => probe((probes.ready ?? probes.healthy)?.() ?? true, 'ready', 'not ready')],
    [
      '/metrics',
      async () => {
        try {
          await probes.beforeScrape?.();
        } catch {
          // A scrape during a Postgres outage still returns every other metric.
        }
        return { status: 200, contentType: probes.registry.contentType, body: await probes.registry.metrics() };
      },
    ],
    ...Object.entries(routes),
  ]);
}

const errorResponse = (status: number, code: string, message: string) =>
  jsonResponse(errorEnvelope(code, message), status);

async function answer(routes: Map<string, OpsRoute>, request: IncomingMessage, response: ServerResponse) {
  const path = (request.url ?? '/').split('?', 1)[0] ?? '/';
  const route = routes.get(path);
  let reply: OpsResponse;
  if (!route) reply = errorResponse(404, 'NOT_FOUND', `no route ${path}`);
  else if (request.method !== 'GET' && request.method !== 'HEAD') {
    reply = errorResponse(405, 'METHOD_NOT_ALLOWED', `${path} answers GET`);
    response.setHeader('allow', 'GET, HEAD');
  } else {
    try {
      reply = await route();
    } catch (error) {
      reply = errorResponse(500, 'INTERNAL', error instanceof Error ? error.message : String(error));
    }
  }
  response.writeHead(reply.status, {
    'content-type': reply.contentType,
    'content-length': Buffer.byteLength(reply.body),
  });
  response.end(request.method === 'HEAD' ? undefined : reply.body);
}

/** Serves the probes and routes on host:port; rejects when the port cannot be taken. */
export function serveOps(
  probes: OpsProbes,
  port: number,
  host: string,
  routes: Record<string, OpsRoute> = {},
): Promise<Server> {
  const table = opsRoutes(probes, routes);
  const server = createServer((request, response) => {
    answer(table, request, response).catch(() => response.destroy());
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}

/** The port a server listens on (the one the OS chose for port 0). */
export function listeningPort(server: Server): number | undefined {
  const address = server.address();
  return typeof address === 'object' && address ? address.port : undefined;
}
