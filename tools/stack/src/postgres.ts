import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { StackError } from './errors.ts';
import { isRoot, run } from './exec.ts';
import { onHarnessExit } from './exit-hooks.ts';
import { freePort, portIsFree } from './ports.ts';

export interface PostgresHandle {
  url: string;
  adminUrl: string;
  port: number;
  dataDir: string;
  owned: boolean;
  stop(mode?: 'fast' | 'immediate'): Promise<void>;
  start(): Promise<void>;
  restart(mode?: 'fast' | 'immediate'): Promise<void>;
}

/** The machine's Postgres server binaries: PG_BIN, else the newest under /usr/lib/postgresql. */
export function postgresBinDir(): string {
  if (process.env.PG_BIN) return process.env.PG_BIN;
  const root = '/usr/lib/postgresql';
  if (existsSync(root)) {
    const versions = readdirSync(root)
      .filter((v) => existsSync(path.join(root, v, 'bin', 'initdb')))
      .sort((a, b) => Number(b) - Number(a));
    if (versions[0]) return path.join(root, versions[0], 'bin');
  }
  const fromConfig = spawnSync('pg_config', ['--bindir'], { encoding: 'utf8' });
  if (fromConfig.status === 0 && existsSync(path.join(fromConfig.stdout.trim(), 'initdb'))) {
    return fromConfig.stdout.trim();
  }
  throw new StackError(
    'TOOL_MISSING',
    'no PostgreSQL server binaries (initdb, pg_ctl) found: install postgresql (Debian: postgresql-15), set PG_BIN, or set DATABASE_URL',
  );
}

/**
 * A private cluster with wal_level=logical on a free port. Its data lives in
 * `<dir>/pg` and is reused when present, so `./walnut up` keeps state.
 */
export async function startPostgres(opts: { dir: string; log?: (line: string) => void }): Promise<PostgresHandle> {
  const log = opts.log ?? (() => {});
  const bin = postgresBinDir();
  const home = path.resolve(opts.dir, 'pg');
  const dataDir = path.join(home, 'data');
  const logFile = path.join(home, 'postgres.log');
  await mkdir(home, { recursive: true });
  if (isRoot) {
    // The postgres OS user must be able to reach and own its directories.
    await chmod(path.resolve(opts.dir), 0o755);
    await run('chown', ['-R', 'postgres:postgres', home], { code: 'POSTGRES_FAILED' });
  }
  if (!existsSync(path.join(dataDir, 'PG_VERSION'))) {
    log(`initdb ${dataDir}`);
    await run(
      path.join(bin, 'initdb'),
      ['-D', dataDir, '--auth=trust', '-U', 'postgres', '--encoding=UTF8', '--no-locale', '--no-sync'],
      { code: 'POSTGRES_FAILED', asPostgres: true },
    );
  }
  const port = await rememberedPort(path.join(opts.dir, 'pg.port'));
  const settings = [
    'wal_level=logical',
    'max_replication_slots=32',
    'max_wal_senders=32',
    'max_connections=300',
    'listen_addresses=127.0.0.1',
    `port=${port}`,
    `unix_socket_directories=${home}`,
  ];
  const pgCtl = (args: string[]) =>
    run(path.join(bin, 'pg_ctl'), ['-D', dataDir, ...args], { code: 'POSTGRES_FAILED', asPostgres: true });

  let running = false;
  const start = async () => {
    await pgCtl(['-l', logFile, '-w', '-t', '120', '-o', settings.map((s) => `-c ${s}`).join(' '), 'start']);
    running = true;
  };
  const stop = async (mode: 'fast' | 'immediate' = 'fast') => {
    if (!running) return;
    await pgCtl(['-m', mode, '-w', '-t', '120', 'stop']);
    running = false;
  };

  log(`starting postgres on 127.0.0.1:${port}`);
  await start();
  onHarnessExit(() => {
    if (!running) return;
    const args = ['-D', dataDir, '-m', 'immediate', 'stop'];
    const [file, argv] = isRoot
      ? ['runuser', ['-u', 'postgres', '--', path.join(bin, 'pg_ctl'), ...args]]
      : [path.join(bin, 'pg_ctl'), args];
    spawnSync(file, argv, { stdio: 'ignore' });
  });

  const adminUrl = `postgres://postgres@127.0.0.1:${port}/postgres`;
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    const wal = await client.query<{ wal_level: string }>('SHOW wal_level');
    if (wal.rows[0]?.wal_level !== 'logical') {
      throw new StackError('POSTGRES_FAILED', `cluster started with wal_level=${wal.rows[0]?.wal_level}`);
    }
  } finally {
    await client.end();
  }
  const url = await createDatabase(adminUrl, 'walnut');

  return {
    url,
    adminUrl,
    port,
    dataDir,
    owned: true,
    stop,
    start,
    async restart(mode = 'fast') {
      await stop(mode);
      await start();
    },
  };
}

/** Creates the database when missing and returns its URL (same server, other path). */
export async function createDatabase(baseUrl: string, name: string): Promise<string> {
  const client = new pg.Client({ connectionString: baseUrl });
  await client.connect();
  try {
    const exists = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (exists.rowCount === 0) await client.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`);
  } finally {
    await client.end();
  }
  const url = new URL(baseUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

async function rememberedPort(file: string): Promise<number> {
  const saved = existsSync(file) ? Number((await readFile(file, 'utf8')).trim()) : Number.NaN;
  const port = Number.isInteger(saved) && (await portIsFree(saved)) ? saved : await freePort();
  await writeFile(file, `${port}\n`);
  return port;
}
