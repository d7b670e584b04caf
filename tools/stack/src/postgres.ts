import { existsSync } from 'node:fs';
import { appendFile, chmod, mkdir, readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { createDatabase } from './database.ts';
import { StackError } from './errors.ts';
import { asPostgresArgv, isRoot, run, runSync, shellQuote, tailFile } from './exec.ts';
import { onHarnessExit } from './exit-hooks.ts';
import { postgresBinaries } from './pg-binaries.ts';
import { rememberedPorts } from './ports.ts';
import { waitFor } from './wait-for.ts';
import { deadMansSwitch } from './watchdog.ts';

export interface PostgresHandle {
  /** postgres://postgres@127.0.0.1:<port>/walnut */
  url: string;
  /** Same server, database `postgres`: for CREATE DATABASE and slot housekeeping. */
  adminUrl: string;
  port: number;
  dataDir: string;
  /** false when the server came from DATABASE_URL: then stop/start/restart reject with NOT_OWNED. */
  owned: boolean;
  stop(mode?: 'fast' | 'immediate'): Promise<void>;
  start(): Promise<void>;
  /** Stops and starts on the same port, so clients reconnect to the same URL. */
  restart(mode?: 'fast' | 'immediate'): Promise<void>;
  /**
   * SIGKILLs the postmaster and every backend (its process group), as a
   * machine crash would, and resolves once the postmaster is gone. start()
   * afterwards recovers from the WAL like any crashed server.
   */
  kill(): Promise<void>;
}

/** pg_ctl's own wait (-t) for start and stop; a stop that overruns it is escalated to immediate. */
const pgCtlTimeoutS = '60';

/**
 * A private cluster with wal_level=logical on a free port, data in `<dir>/pg`,
 * log in `<dir>/postgres.log`. An existing cluster there is reused, so dev
 * restarts keep their data, and so is its port (`<dir>/pg.port`) when free.
 */
export async function startPostgres(opts: {
  dir: string;
  log?: (line: string) => void;
  /** More `name=value` server settings, after (so overriding) the stack's own: a standby's primary_conninfo, say. */
  extraSettings?: readonly string[];
}): Promise<PostgresHandle> {
  const log = opts.log ?? (() => {});
  const binaries = await postgresBinaries();
  const bin = binaries.dir;
  log(`postgres server: ${binaries.source}, ${bin}`);
  const pgCtlPath = path.join(bin, 'pg_ctl');
  const dir = path.resolve(opts.dir);
  const dataDir = path.join(dir, 'pg');
  const logFile = path.join(dir, 'postgres.log');
  await mkdir(dataDir, { recursive: true });
  if (isRoot) await handToPostgresUser(dir, dataDir, logFile);

  const pgCtl = (args: string[]) =>
    run(pgCtlPath, ['-D', dataDir, ...args], { code: 'POSTGRES_FAILED', asPostgres: true, cwd: dir });
  // pg_ctl status exits 0 when a postmaster runs on this data directory, 3 when none does.
  const isRunning = () =>
    pgCtl(['status']).then(
      () => true,
      () => false,
    );

  if (!existsSync(path.join(dataDir, 'PG_VERSION'))) {
    if ((await readdir(dataDir)).length > 0) {
      throw new StackError(
        'POSTGRES_FAILED',
        `${dataDir} is not empty but holds no cluster: remove it or pick another dir`,
      );
    }
    log(`initdb ${dataDir}`);
    await run(
      path.join(bin, 'initdb'),
      // --no-sync only skips initdb's own final fsync; the server keeps fsync=on.
      ['-D', dataDir, '--auth=trust', '-U', 'postgres', '--encoding=UTF8', '--no-locale', '--no-sync'],
      { code: 'POSTGRES_FAILED', asPostgres: true, cwd: dir },
    );
  } else if (await isRunning()) {
    // A harness that was SIGKILLed before its watchdog could act; the cluster is ours (our dir).
    log(`stopping a postgres left running on ${dataDir}`);
    await pgCtl(['-m', 'fast', '-w', '-t', pgCtlTimeoutS, 'stop']);
  }

  const [port] = (await rememberedPorts(path.join(dir, 'pg.port'), 1)) as [number];
  // A Unix socket path must fit sockaddr_un (107 bytes) with "/.s.PGSQL.<port>"; else TCP only.
  const socketDir = dataDir.length <= 85 ? dataDir : '';
  const settings = [
    'wal_level=logical',
    'max_replication_slots=32',
    'max_wal_senders=32',
    'max_connections=300',
    'listen_addresses=127.0.0.1',
    `port=${port}`,
    `unix_socket_directories=${socketDir}`,
    ...(opts.extraSettings ?? []),
    // For looking inside (pg_stat_statements, auto_explain): docs/operations.md.
    ...(process.env.WALNUT_PG_SETTINGS?.split(/\s+/).filter(Boolean) ?? []),
  ];
  // pg_ctl runs postgres through /bin/sh, hence the quoting.
  const serverOptions = settings.map((s) => `-c ${shellQuote(s)}`).join(' ');

  let watchdog: { disarm(): void } | undefined;
  const start = async () => {
    if (await isRunning()) return;
    log(`starting postgres on 127.0.0.1:${port} (${dataDir})`);
    // pg_ctl daemonizes postgres (its own session): nothing ties it to us unless we stop it.
    // Armed before the start so that no moment exists where it runs unguarded.
    watchdog ??= deadMansSwitch(...asPostgresArgv(pgCtlPath, ['-D', dataDir, '-m', 'fast', 'stop']));
    try {
      await pgCtl(['-w', '-t', pgCtlTimeoutS, '-l', logFile, '-o', serverOptions, 'start']);
    } catch (error) {
      throw new StackError(
        'POSTGRES_FAILED',
        `postgres did not start on 127.0.0.1:${port}: ${(error as Error).message}\n--- ${logFile}:\n${tailFile(logFile)}`,
        { cause: error },
      );
    }
  };
  const stop = async (mode: 'fast' | 'immediate' = 'fast') => {
    if (await isRunning()) {
      try {
        await pgCtl(['-m', mode, '-w', '-t', pgCtlTimeoutS, 'stop']);
      } catch (error) {
        // Fast shutdown waits for walsenders to ship the shutdown checkpoint; a stuck client can hold it up.
        if (mode !== 'fast') throw error;
        log(`fast shutdown failed (${(error as Error).message.split('\n')[0]}); stopping immediately`);
        await pgCtl(['-m', 'immediate', '-w', '-t', pgCtlTimeoutS, 'stop']);
      }
    }
    watchdog?.disarm();
    watchdog = undefined;
  };

  onHarnessExit(() => {
    if (existsSync(path.join(dataDir, 'postmaster.pid'))) {
      runSync(pgCtlPath, ['-D', dataDir, '-m', 'fast', '-w', '-t', '30', 'stop'], { asPostgres: true });
    }
    watchdog?.disarm();
  });
  await start();

  const adminUrl = `postgres://postgres@127.0.0.1:${port}/postgres`;
  let url: string;
  try {
    await expectLogicalWal(adminUrl);
    url = await createDatabase(adminUrl, 'walnut');
  } catch (error) {
    await stop('fast').catch(() => {});
    throw error;
  }
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
    async kill() {
      await killPostmaster(dataDir);
      watchdog?.disarm();
      watchdog = undefined;
    },
  };
}

/**
 * SIGKILL to the postmaster's process group (pg_ctl starts it in a session of
 * its own, so the group is the postmaster and its backends), then waits for
 * the postmaster to be gone. No-op when nothing runs on `dataDir`.
 */
async function killPostmaster(dataDir: string): Promise<void> {
  const pidFile = path.join(dataDir, 'postmaster.pid');
  if (!existsSync(pidFile)) return;
  const pid = Number((await readFile(pidFile, 'utf8')).split('\n')[0]);
  if (!Number.isInteger(pid) || pid <= 0) return;
  const alive = () => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  if (!alive()) return;
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    process.kill(pid, 'SIGKILL');
  }
  await waitFor(`postmaster ${pid} to die`, async () => !alive(), { timeoutMs: 10_000, intervalMs: 20 });
}

/**
 * initdb and postgres refuse to run as root, so the postgres OS user runs them
 * and must own the data directory and log file and be able to reach them.
 */
async function handToPostgresUser(dir: string, dataDir: string, logFile: string): Promise<void> {
  await run('id', ['-u', 'postgres'], { code: 'TOOL_MISSING' }).catch((error: unknown) => {
    throw new StackError(
      'TOOL_MISSING',
      'running as root but there is no postgres OS user to run initdb/postgres as (they refuse root): create one or set DATABASE_URL',
      { cause: error },
    );
  });
  // mkdtemp makes 0700 directories; the postgres user only needs to pass through.
  await chmod(dir, (await stat(dir)).mode | 0o001);
  await appendFile(logFile, '');
  await run('chown', ['-R', 'postgres:postgres', dataDir, logFile], { code: 'POSTGRES_FAILED' });
  if (runSync('test', ['-w', dataDir], { asPostgres: true }) !== 0) {
    throw new StackError(
      'POSTGRES_FAILED',
      `the postgres OS user cannot reach ${dataDir}: every parent directory needs o+x, or pick a dir under /tmp`,
    );
  }
}

async function expectLogicalWal(adminUrl: string): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    const wal = await client.query<{ wal_level: string }>('SHOW wal_level');
    const level = wal.rows[0]?.wal_level;
    if (level !== 'logical') {
      throw new StackError(
        'POSTGRES_FAILED',
        `postgres started with wal_level=${level}, logical decoding needs logical`,
      );
    }
  } finally {
    await client.end();
  }
}
