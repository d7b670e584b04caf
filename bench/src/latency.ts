/**
 * End-to-end latency: from the API's 202 to the value being readable in `kvs`,
 * at a fixed offered load (open loop: requests are sent on schedule whether or
 * not earlier ones finished, up to a cap on requests in flight). Every write
 * has its own key. The watcher LISTENs on the applier's channel: the applier
 * NOTIFYs a request's id in the transaction that writes its value to `kvs`,
 * and a notification is delivered at that commit, so its arrival is the moment
 * the value became readable, without a polling interval's resolution or cost.
 */
import http from 'node:http';
import { APPLIED_CHANNEL } from '@walnut/schema';
import type pg from 'pg';
import { type CpuPart, type CpuUse, cpuSnapshot, cpuUse } from './machine-cpu.ts';

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
  /** 202 → kvs in two parts, from the `requests` row's timestamps (Postgres's clock, the same machine's). */
  stages: ApplyStages | undefined;
  /** The machine's CPU while the load was offered, by part. */
  cpu: CpuUse;
}

/**
 * `requests.created_at` is the writing statement's start and `applied_at` the
 * applier's transaction's: the relay, Kafka and the applier's fetch lie between
 * them, the applier's statement and commit after the second.
 */
export interface ApplyStages {
  /** The write's statement start → the applier's transaction start, ms. */
  commitToApplyStart: Percentiles;
  /** The applier's transaction start → the value readable (its NOTIFY here), ms. */
  applyStartToReadable: Percentiles;
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

function postJson(url: URL, body: string): Promise<{ status: number; body: string }> {
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
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          text += chunk;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
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
  /** The deployment's own processes, for the CPU figures. */
  processes?: ReadonlyMap<number, CpuPart>;
}): Promise<LatencyResult> {
  const accepted = new Map<string, number>(); // request id → time of 202
  // A notification can beat the client's handling of the 202 when the event loop is busy.
  const appliedEarly = new Map<string, number>();
  const applyMs: number[] = [];
  /** Request id → [202 arrival, readable], epoch ms, for the stage figures. */
  const times = new Map<string, [number, number]>();
  const epoch = (at: number) => performance.timeOrigin + at;
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
      .then(({ status, body }) => {
        const now = performance.now();
        if (status === 202) {
          const id = (JSON.parse(body) as { request_id: string }).request_id;
          const early = appliedEarly.get(id);
          if (early === undefined) accepted.set(id, now);
          else {
            appliedEarly.delete(id);
            applyMs.push(Math.max(0, early - now));
            times.set(id, [epoch(now), epoch(early)]);
          }
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

  const listener = await opts.pool.connect();
  const onNotification = (message: pg.Notification) => {
    const now = performance.now();
    for (const id of message.payload?.split(',') ?? []) {
      const at = accepted.get(id);
      if (at === undefined) {
        appliedEarly.set(id, now);
        continue;
      }
      applyMs.push(now - at);
      times.set(id, [epoch(at), epoch(now)]);
      accepted.delete(id);
    }
  };
  listener.on('notification', onNotification);
  await listener.query(`LISTEN ${APPLIED_CHANNEL}`);

  // Open loop: the nth request is due at n / rate seconds, whatever happened before it.
  const total = Math.round(opts.ratePerSecond * opts.seconds);
  const cpuBefore = cpuSnapshot(opts.processes ?? new Map());
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
  const cpu = cpuUse(cpuBefore, cpuSnapshot(opts.processes ?? new Map()));
  await Promise.all(requests);
  // Give the stragglers a deadline rather than waiting forever.
  const deadline = performance.now() + 30_000;
  while (accepted.size > 0 && performance.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
  const notApplied = accepted.size;
  accepted.clear();
  await listener.query(`UNLISTEN ${APPLIED_CHANNEL}`);
  listener.off('notification', onNotification);
  listener.release();
  const stages = await applyStages(opts.pool, times);
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
    stages,
    cpu,
  };
}

async function applyStages(
  pool: pg.Pool,
  times: ReadonlyMap<string, [number, number]>,
): Promise<ApplyStages | undefined> {
  if (times.size === 0) return undefined;
  const { rows } = await pool.query<{ id: string; created: number; applied: number | null }>(
    `SELECT request_id::text AS id, extract(epoch FROM created_at) * 1000 AS created,
            extract(epoch FROM applied_at) * 1000 AS applied
       FROM requests WHERE request_id = ANY($1::uuid[])`,
    [[...times.keys()]],
  );
  const toApply: number[] = [];
  const toReadable: number[] = [];
  for (const row of rows) {
    const readable = times.get(row.id)?.[1];
    if (row.applied === null || readable === undefined) continue;
    toApply.push(Number(row.applied) - Number(row.created));
    toReadable.push(readable - Number(row.applied));
  }
  if (toApply.length === 0) return undefined;
  return { commitToApplyStart: percentiles(toApply), applyStartToReadable: percentiles(toReadable) };
}
