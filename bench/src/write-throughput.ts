/**
 * API write throughput against pgbench: how many single-key writes per second
 * the API commits with `clients` requests always in flight (closed loop, by
 * autocannon), next to pgbench running the same transaction (an outbox row and a
 * requests row) with as many connections. The API gets a pool of exactly
 * `clients` connections, so both put the same concurrency into Postgres; the gap
 * is what HTTP, validation and the ORM cost.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { freePort, startWalnutProcess, type WalnutFixture } from '@walnut/stack';
import autocannon from 'autocannon';
import { pgClientTool } from './limits.ts';
import { cpuSeconds } from './proc-stats.ts';

export interface WriteThroughput {
  clients: number;
  seconds: number;
  apiWritesPerSecond: number;
  /** Anything but a 202, plus connection errors and timeouts. */
  apiFailed: number;
  apiLatencyP50Ms: number;
  apiLatencyP99Ms: number;
  /** CPU time (user + system) of the API process per accepted write, or null where /proc is missing. */
  apiCpuMsPerWrite: number | null;
  pgbenchTps: number;
  /** pgbench's own summary lines (tps, average latency). */
  pgbenchLines: string[];
}

/**
 * Starts an API of its own (pool = clients, the fixture's relay and applier keep
 * running downstream), warms it up, measures it, stops it, then runs pgbench.
 */
export async function measureWrites(
  walnut: WalnutFixture,
  opts: {
    clients: number;
    seconds: number;
    log: (line: string) => void;
    /** When set, the API runs with `node --cpu-prof` and writes its profile here at exit (warm-up included). */
    profileDir?: string | undefined;
  },
): Promise<WriteThroughput> {
  const port = await freePort();
  // Only the API gets the pool size: the fixture's env is shared with the relay and applier.
  const api = startWalnutProcess(
    'api',
    {
      ...walnut.env,
      API_PORT: String(port),
      API_PG_POOL_MAX: String(opts.clients),
    },
    opts.profileDir ? ['--cpu-prof', `--cpu-prof-dir=${opts.profileDir}`] : [],
  );
  let run: Awaited<ReturnType<typeof autocannonWrites>>;
  let apiCpuSeconds: number | null = null;
  try {
    await api.waitForLine(/api listening/);
    const url = `http://127.0.0.1:${port}`;
    // Warm-up, not counted: the pool's connections, JIT.
    await autocannonWrites({ url, clients: opts.clients, seconds: 3, label: 'warmup' });
    opts.log(`API write throughput, autocannon, ${opts.clients} connections closed loop for ${opts.seconds} s`);
    const cpuBefore = cpuSeconds(api.pid);
    run = await autocannonWrites({ url, clients: opts.clients, seconds: opts.seconds, label: 'tput' });
    const cpuAfter = cpuSeconds(api.pid);
    if (cpuBefore !== null && cpuAfter !== null) apiCpuSeconds = cpuAfter - cpuBefore;
    if (!api.running) throw new Error(`api exited:\n${api.tail()}`);
  } finally {
    await api.stop('SIGTERM');
  }
  const apiCpuMsPerWrite = apiCpuSeconds === null || run.accepted === 0 ? null : (apiCpuSeconds * 1000) / run.accepted;
  opts.log(
    `  ${run.writesPerSecond.toFixed(0)} writes/s (${run.failed} failed), API CPU ${apiCpuMsPerWrite?.toFixed(3) ?? 'n/a'} ms per write`,
  );
  opts.log(`pgbench, the same transaction, ${opts.clients} connections for ${opts.seconds} s`);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'walnut-bench-pgbench-'));
  try {
    const pgb = await pgbenchTps({
      databaseUrl: walnut.databaseUrl,
      dir,
      clients: opts.clients,
      seconds: opts.seconds,
    });
    opts.log(`  ${pgb.lines.join('; ')}`);
    return {
      clients: opts.clients,
      seconds: opts.seconds,
      apiWritesPerSecond: run.writesPerSecond,
      apiFailed: run.failed,
      apiLatencyP50Ms: run.latencyP50Ms,
      apiLatencyP99Ms: run.latencyP99Ms,
      apiCpuMsPerWrite,
      pgbenchTps: pgb.tps,
      pgbenchLines: pgb.lines,
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** POST /kv from `clients` keep-alive connections, each request to a new key. */
async function autocannonWrites(opts: { url: string; clients: number; seconds: number; label: string }) {
  let n = 0;
  const result = await autocannon({
    url: `${opts.url}/kv`,
    connections: opts.clients,
    duration: opts.seconds,
    timeout: 30,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    requests: [
      {
        setupRequest: (request) => {
          const i = n++;
          return { ...request, body: JSON.stringify({ key: `${opts.label}-${i}`, value: { n: i } }) };
        },
      },
    ],
  });
  const accepted = result.statusCodeStats?.['202']?.count ?? 0;
  return {
    accepted,
    writesPerSecond: accepted / result.duration,
    failed: result.requests.total - accepted + result.errors,
    latencyP50Ms: result.latency.p50,
    latencyP99Ms: result.latency.p99,
  };
}

/**
 * The request id both rows share, as the API's do, so the applier marks
 * pgbench's requests applied just like the API's: a version-4 UUID from two
 * client-side random numbers (one call of gen_random_uuid() cannot be shared
 * between two statements without another round trip).
 */
const REQUEST_ID =
  "overlay(overlay(lpad(to_hex(:hi::bigint), 16, '0') || lpad(to_hex(:lo::bigint), 16, '0') placing '4' from 13) placing '8' from 17)::uuid";

/** pgbench with a script of the API's transaction; returns tps without connection time. */
export async function pgbenchTps(opts: {
  databaseUrl: string;
  dir: string;
  clients: number;
  seconds: number;
}): Promise<{ tps: number; lines: string[] }> {
  const script = path.join(opts.dir, 'api-write.sql');
  // pgbench runs as the postgres OS user when we are root: it must be able to read the script.
  await chmod(opts.dir, 0o755);
  // The same rows the API commits for POST /kv {key, value}; the payload is a valid
  // kv event, so the relay and applier downstream do the same work for both.
  await writeFile(
    script,
    [
      '\\set k random(1, 1000000000)',
      '\\set hi random(0, 4611686018427387903)',
      '\\set lo random(0, 4611686018427387903)',
      'BEGIN;',
      `INSERT INTO outbox (id, aggregatetype, aggregateid, type, payload) SELECT r, 'kv', 'pgb-' || :k, 'kv.set', jsonb_build_object('op', 'set', 'key', 'pgb-' || :k, 'value', jsonb_build_object('n', :k), 'request_id', r) FROM (SELECT ${REQUEST_ID} AS r) AS generated;`,
      `INSERT INTO requests (request_id, key, keys) VALUES (${REQUEST_ID}, 'pgb-' || :k, ARRAY['pgb-' || :k]);`,
      'COMMIT;',
      '',
    ].join('\n'),
    { mode: 0o644 },
  );
  const args = [
    '-n',
    '-c',
    String(opts.clients),
    '-j',
    '2',
    '-T',
    String(opts.seconds),
    '-f',
    script,
    opts.databaseUrl,
  ];
  const asRoot = process.getuid?.() === 0;
  const [cmd, argv] = asRoot
    ? ['runuser', ['-u', 'postgres', '--', pgClientTool('pgbench'), ...args]]
    : [pgClientTool('pgbench'), args];
  const child = spawn(cmd, argv as string[], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString('utf8')));
  child.stderr.on('data', (c: Buffer) => (out += c.toString('utf8')));
  const timer = setTimeout(() => child.kill('SIGKILL'), (opts.seconds + 120) * 1000);
  const [code] = await once(child, 'exit');
  clearTimeout(timer);
  const lines = out.split('\n').filter((l) => /^(tps|latency average) = /.test(l));
  const m = /^tps = ([\d.]+)/m.exec(out);
  if (code !== 0 || !m) throw new Error(`pgbench exited ${code}: ${out.trim().slice(-2000)}`);
  return { tps: Number(m[1]), lines: lines.map((l) => l.trim()) };
}
