/**
 * API write throughput against pgbench: how many single-key writes per second
 * the API commits with `clients` requests always in flight (closed loop), next
 * to pgbench running the same transaction (an outbox row and a requests row)
 * with as many connections. The gap is what HTTP, validation and the ORM cost.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { chmod, writeFile } from 'node:fs/promises';
import path from 'node:path';

const PG_BIN = process.env.PG_BIN ?? '/usr/lib/postgresql/15/bin';

export interface WriteThroughput {
  clients: number;
  seconds: number;
  apiWritesPerSecond: number;
  apiFailed: number;
  pgbenchTps: number;
  pgbenchLine: string;
}

export async function apiWriteThroughput(opts: { apiUrl: string; clients: number; seconds: number }) {
  let accepted = 0;
  let failed = 0;
  const began = performance.now();
  const end = began + opts.seconds * 1000;
  let n = 0;
  const client = async () => {
    while (performance.now() < end) {
      const key = `tput-${n++}`;
      try {
        const res = await fetch(`${opts.apiUrl}/kv`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ key, value: { n } }),
          signal: AbortSignal.timeout(30_000),
        });
        await res.arrayBuffer();
        if (res.status === 202) accepted++;
        else failed++;
      } catch {
        failed++;
      }
    }
  };
  await Promise.all(Array.from({ length: opts.clients }, client));
  const seconds = (performance.now() - began) / 1000;
  return { writesPerSecond: accepted / seconds, failed };
}

/** pgbench with a script of the API's transaction; returns tps without connection time. */
export async function pgbenchTps(opts: {
  databaseUrl: string;
  dir: string;
  clients: number;
  seconds: number;
}): Promise<{ tps: number; line: string }> {
  const script = path.join(opts.dir, 'api-write.sql');
  // pgbench runs as the postgres OS user when we are root: it must be able to read the script.
  await chmod(opts.dir, 0o755);
  // The same rows the API commits for POST /kv {key, value}; the payload is a valid
  // kv event, so the relay and applier downstream do the same work for both.
  await writeFile(
    script,
    [
      '\\set k random(1, 1000000000)',
      'BEGIN;',
      "INSERT INTO outbox (id, aggregatetype, aggregateid, type, payload) SELECT r, 'kv', 'pgb-' || :k, 'kv.set', jsonb_build_object('op', 'set', 'key', 'pgb-' || :k, 'value', jsonb_build_object('n', :k), 'request_id', r) FROM gen_random_uuid() r;",
      "INSERT INTO requests (request_id, key, keys) VALUES (gen_random_uuid(), 'pgb-' || :k, ARRAY['pgb-' || :k]);",
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
    ? ['runuser', ['-u', 'postgres', '--', `${PG_BIN}/pgbench`, ...args]]
    : [`${PG_BIN}/pgbench`, args];
  const child = spawn(cmd, argv as string[], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString('utf8')));
  child.stderr.on('data', (c: Buffer) => (out += c.toString('utf8')));
  const timer = setTimeout(() => child.kill('SIGKILL'), (opts.seconds + 120) * 1000);
  const [code] = await once(child, 'exit');
  clearTimeout(timer);
  const line = out.split('\n').find((l) => /^tps = /.test(l));
  const m = line && /^tps = ([\d.]+)/.exec(line);
  if (code !== 0 || !line || !m) throw new Error(`pgbench exited ${code}: ${out.trim().slice(-2000)}`);
  return { tps: Number(m[1]), line: line.trim() };
}
