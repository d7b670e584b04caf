import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { StackError } from './errors.ts';

/**
 * The machine's Postgres server binaries (initdb, pg_ctl): `PG_BIN`, else the
 * newest `/usr/lib/postgresql/<version>/bin` (Debian's layout), else
 * `pg_config --bindir`.
 */
export function postgresBinDir(env: NodeJS.ProcessEnv = process.env): string {
  const hasServer = (dir: string | undefined): dir is string =>
    dir !== undefined && existsSync(path.join(dir, 'initdb')) && existsSync(path.join(dir, 'pg_ctl'));
  if (env.PG_BIN) {
    if (hasServer(env.PG_BIN)) return env.PG_BIN;
    throw new StackError('TOOL_MISSING', `PG_BIN=${env.PG_BIN} holds no initdb and pg_ctl`);
  }
  const found = [...debianBinDirs(), pgConfigBinDir()].find(hasServer);
  if (found) return found;
  throw new StackError(
    'TOOL_MISSING',
    'no PostgreSQL server binaries (initdb, pg_ctl) found in /usr/lib/postgresql/*/bin or via pg_config: ' +
      'install them (Debian: postgresql-15), set PG_BIN, or set DATABASE_URL to a server with wal_level=logical',
  );
}

function debianBinDirs(): string[] {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return [];
  return readdirSync(root)
    .filter((version) => Number.isFinite(Number(version)))
    .sort((a, b) => Number(b) - Number(a))
    .map((version) => path.join(root, version, 'bin'));
}

function pgConfigBinDir(): string | undefined {
  const result = spawnSync('pg_config', ['--bindir'], { encoding: 'utf8' });
  return result.status === 0 ? result.stdout.trim() : undefined;
}
