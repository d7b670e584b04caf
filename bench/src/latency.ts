/**
 * End-to-end latency: from the API's 202 to the value being readable in `kvs`,
 * at a fixed offered load (open loop: requests are sent on schedule whether or
 * not earlier ones finished, up to a cap on requests in flight). Every write
 * has its own key, and one watcher polls `kvs` for the keys still pending
 * every WATCH_INTERVAL_MS, so the figures carry up to that much of resolution.
 */
import http from 'node:http';
import type pg from 'pg';

export const WATCH_INTERVAL_MS = 5;
const MAX_IN_FLIGHT = 512;

export interface LatencyResult {
  offeredPerSecond: number;
  seconds: number;
  sent: number;
  accepted: number;
  failed: number;
  /** Why writes failed: HTTP status or error code, with counts. */
  failures: Record<string, number>;
  /** Offered but not sent: MAX_IN_FLIGHT requests were already waiting. */
  shed: number;
  applied: number;
  /** Accepted but not readable in kvs within the deadline after the load. */
  notApplied: number;
  /** 202s per second, from the first request to the last 202: what the API actually took. */
  acceptedPerSecond: number;
  /** 202 → readable in kvs, ms. */
  apply: Percentiles;
  /** Request sent → 202, ms. */
  http: Percentiles;
}

export interface Percentiles {
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

function percentiles(values: number[]): Percentiles {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] ?? Number.NaN;
  return { p50: at(0.5), p95: at(0.95), p99: at(0.99), max: sorted[sorted.length - 1] ?? Number.NaN };
}

// node:http with kept-alive sockets rather than fetch: at 1,000 writes/s fetch
// cost the load generator a large share of a core the API and Postgres share.
// Idle sockets are closed at 4 s, before the server's 5 s keep-alive timeout:
// otherwise a request can go out on a socket the server is closing (ECONNRESET).
const agent = new http.Agent({ keepAlive: true, maxSockets: MAX_IN_FLIGHT, timeout: 4_000 });

function postJson(url: URL, body: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      url,
      {
        method: 'POST',
        agent,
        timeout: 30_000,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error('request timed out')));
    req.on('error', reject);
    req.end(body);
  });
}

export async function measureLatency(opts: {
  apiUrl: string;
  pool: pg.Pool;
  ratePerSecond: number;
  seconds: number;
  label: string;
}): Promise<LatencyResult> {
  const accepted = new Map<string, number>(); // key → time of 202
  const applyMs: number[] = [];
  const httpMs: number[] = [];
  let sent = 0;
  let failed = 0;
  const failures: Record<string, number> = {};
  const fail = (reason: string) => {
    failed++;
    failures[reason] = (failures[reason] ?? 0) + 1;
  };
  let shed = 0;
  let inFlight = 0;
  let accepted202 = 0;
  let last202 = 0;
  const requests = new Set<Promise<void>>();

  const fire = (n: number) => {
    const key = `bench-${opts.label}-${n}`;
    const start = performance.now();
    inFlight++;
    sent++;
    const request = postJson(new URL('/kv', opts.apiUrl), JSON.stringify({ key, value: { n } }))
      .then((status) => {
        const now = performance.now();
        if (status === 202) {
          accepted.set(key, now);
          accepted202++;
          last202 = now;
          httpMs.push(now - start);
        } else fail(`HTTP ${status}`);
      })
      .catch((error: NodeJS.ErrnoException) => {
        fail(error.code ?? error.message);
      })
      .finally(() => {
        inFlight--;
        requests.delete(request);
      });
    requests.add(request);
  };

  let watching = true;
  const watch = (async () => {
    while (watching || accepted.size > 0) {
      const keys = [...accepted.keys()];
      if (keys.length > 0) {
        const { rows } = await opts.pool.query<{ key: string }>('SELECT key FROM kvs WHERE key = ANY($1::text[])', [
          keys,
        ]);
        const now = performance.now();
        for (const { key } of rows) {
          const at = accepted.get(key);
          if (at === undefined) continue;
          applyMs.push(now - at);
          accepted.delete(key);
        }
      }
      await new Promise((resolve) => setTimeout(resolve, WATCH_INTERVAL_MS));
    }
  })();

  // Open loop: the nth request is due at n / rate seconds, whatever happened before it.
  const total = Math.round(opts.ratePerSecond * opts.seconds);
  const began = performance.now();
  let n = 0;
  while (n < total) {
    const due = Math.floor(((performance.now() - began) / 1000) * opts.ratePerSecond);
    while (n < Math.min(due, total)) {
      if (inFlight >= MAX_IN_FLIGHT) shed++;
      else fire(n);
      n++;
    }
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
  const seconds = (performance.now() - began) / 1000;
  await Promise.all(requests);
  // Give the stragglers a deadline rather than waiting forever.
  const deadline = performance.now() + 30_000;
  while (accepted.size > 0 && performance.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
  const notApplied = accepted.size;
  watching = false;
  accepted.clear();
  await watch;
  return {
    offeredPerSecond: opts.ratePerSecond,
    seconds,
    sent,
    accepted: applyMs.length + notApplied,
    failed,
    failures,
    shed,
    applied: applyMs.length,
    acceptedPerSecond: accepted202 / ((last202 - began) / 1000),
    notApplied,
    apply: percentiles(applyMs),
    http: percentiles(httpMs),
  };
}
