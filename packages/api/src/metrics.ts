import { collectProcessMetrics } from '@walnut/runtime';
import type { MiddlewareHandler } from 'hono';
import { matchedRoutes } from 'hono/route';
import type pg from 'pg';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { AppEnv } from './app-env.ts';

/** What the API exposes on /metrics, rendered by prom-client. */
export class ApiMetrics {
  readonly registry = new Registry();

  readonly requests = new Counter({
    name: 'walnut_api_http_requests_total',
    help: 'HTTP requests by method, route pattern and status.',
    labelNames: ['method', 'route', 'status'],
    registers: [this.registry],
  });

  readonly latency = new Histogram({
    name: 'walnut_api_http_request_duration_seconds',
    help: 'Time from request to response, by method and route pattern.',
    labelNames: ['method', 'route'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });

  constructor(pool: pg.Pool, poolMax: number, waiters: () => number) {
    const gauge = (name: string, help: string, read: () => number) =>
      new Gauge({
        name,
        help,
        registers: [this.registry],
        collect() {
          this.set(read());
        },
      });
    gauge('walnut_api_pg_pool_connections', 'Connections the pool holds, busy or idle.', () => pool.totalCount);
    gauge('walnut_api_pg_pool_idle_connections', 'Idle connections in the pool.', () => pool.idleCount);
    gauge('walnut_api_pg_pool_waiting_clients', 'Queries queued for a connection.', () => pool.waitingCount);
    gauge('walnut_api_pg_pool_max_connections', 'API_PG_POOL_MAX.', () => poolMax);
    gauge('walnut_api_read_after_waiters', 'GET ?after= readers waiting for their request.', waiters);
    collectProcessMetrics(this.registry, 'walnut_api_');
  }
}

/**
 * Counts and times every request and writes one access-log line. The route label
 * is the matched pattern (`/kv/:key`), never the raw path, so label cardinality
 * stays bounded; requests no route matched are `unmatched`.
 */
export function observe(metrics: ApiMetrics): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const started = process.hrtime.bigint();
    await next();
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const route = matchedRoutes(c).find((r) => r.method !== 'ALL')?.path ?? 'unmatched';
    const labels = { method: c.req.method, route };
    metrics.requests.inc({ ...labels, status: String(c.res.status) });
    metrics.latency.observe(labels, seconds);
    const line = { method: c.req.method, path: c.req.path, route, status: c.res.status, ms: seconds * 1000 };
    // 503 (not ready) and 504 (?after= ran out) are expected answers, not faults.
    const level = c.res.status === 503 || c.res.status === 504 ? 'warn' : c.res.status >= 500 ? 'error' : 'info';
    c.get('log')[level](line, 'request');
  };
}
