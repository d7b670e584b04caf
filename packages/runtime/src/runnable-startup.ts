import { readFileSync } from 'node:fs';
import { createPgPool } from '@walnut/schema';
import type pg from 'pg';
import type { Logger } from 'pino';
import type { z } from 'zod';
import { createLogger } from './logger.ts';

/**
 * How every runnable (the API, the applier, the relay's commands) starts, so
 * that an operator meets one convention (docs/configuration.md):
 *
 * - settings are read once, at start, from the environment (the relay's flags
 *   fall back to the same variables); a secret may instead come from the file
 *   `<NAME>_FILE` names (Docker and Kubernetes secrets), never from a flag;
 * - each bad value is one line on stderr, `<program>: <setting>: <problem>`,
 *   and the process exits 2 before it logs or connects anything: never a
 *   silent default (shared/STYLE.md);
 * - the logger is pino, named after the program, at LOG_LEVEL;
 * - a Postgres pool survives restarts and failovers (pg-pool.ts in
 *   @walnut/schema) and logs a broken connection as a warning;
 * - SIGTERM and SIGINT log one line, run the runnable's own stop, end the
 *   pools and exit 0. Each is handled once: a second one kills the process.
 */

/** The exit code of a refused start: a bad setting, or a command line the relay refuses. */
export const BAD_SETTINGS_EXIT_CODE = 2;

export interface RunnableSpec<T extends z.ZodType> {
  /** `walnut-api`: the prefix of each error line and the logger's name. */
  program: string;
  /** The runnable's settings (config.ts), keyed by environment variable. */
  schema: T;
  /**
   * Raw settings by name. Default: the environment. The relay passes its
   * parsed flags, each of which commander backs with the same variable.
   */
  settings?: Record<string, string | undefined>;
  /**
   * Settings read only from the environment, or from the file `<NAME>_FILE`
   * names (which wins): passwords and the URLs that carry them. Their errors
   * never echo the value.
   */
  secrets?: readonly string[];
  /** How a setting that is not a secret is named in an error line (the relay adds its flag). */
  label?: (name: string) => string;
}

export type SettingsResult<T> = { ok: true; env: T } | { ok: false; errors: string[] };

/**
 * The pure half of a start: raw settings (secrets from `environment` or
 * their files) parsed with the runnable's schema, or one line per problem.
 */
export function readSettings<T extends z.ZodType>(
  spec: RunnableSpec<T>,
  environment: Record<string, string | undefined>,
  readFile: (path: string) => string,
): SettingsResult<z.infer<T>> {
  const secrets = spec.secrets ?? [];
  const raw: Record<string, string | undefined> = { ...(spec.settings ?? environment) };
  const errors: string[] = [];
  for (const name of secrets) {
    const file = environment[`${name}_FILE`];
    raw[name] = environment[name];
    if (!file) continue;
    try {
      raw[name] = readFile(file).trim();
    } catch (error) {
      errors.push(`${spec.program}: ${name}_FILE: cannot read ${file}: ${(error as Error).message}`);
    }
  }
  if (errors.length > 0) return { ok: false, errors };
  const parsed = spec.schema.safeParse(raw);
  if (parsed.success) return { ok: true, env: parsed.data };
  const label = (name: string) => (secrets.includes(name) ? `${name} (or ${name}_FILE)` : (spec.label?.(name) ?? name));
  return {
    ok: false,
    errors: parsed.error.issues.map(
      (issue) => `${spec.program}: ${label(issue.path.map(String).join('.'))}: ${issue.message}`,
    ),
  };
}

/** Prints the lines of a refused start and exits with BAD_SETTINGS_EXIT_CODE. */
export function exitRefused(lines: readonly string[]): never {
  for (const line of lines) console.error(line);
  process.exit(BAD_SETTINGS_EXIT_CODE);
}

/** The runnable's settings, or the process exits 2 saying what is wrong. */
export function settingsOrExit<T extends z.ZodType>(spec: RunnableSpec<T>): z.infer<T> {
  const read = readSettings(spec, process.env, (path) => readFileSync(path, 'utf8'));
  if (!read.ok) exitRefused(read.errors);
  return read.env;
}

export interface StartedRunnable<Env> {
  env: Env;
  log: Logger;
  /** A pool for this runnable, ended after its stop on SIGTERM/SIGINT. */
  pgPool(opts: PgPoolOptions): pg.Pool;
  /**
   * Installs the SIGTERM/SIGINT handling: one `stopping` line, then `stop`,
   * then the pools end, `stopped`, exit 0. A stop that throws is logged as
   * fatal and the process exits 1.
   */
  onStop(stop: (signal: NodeJS.Signals) => Promise<void>): void;
}

export interface PgPoolOptions {
  connectionString: string;
  max: number;
  idleTimeoutMillis?: number;
  connectionTimeoutMillis?: number;
}

/** Settings (or exit 2), logger, pools and signal handling of one runnable. */
export function startRunnable<T extends z.ZodType<{ LOG_LEVEL: string }>>(
  spec: RunnableSpec<T>,
): StartedRunnable<z.infer<T>> {
  const env = settingsOrExit(spec);
  const log = createLogger(spec.program, env.LOG_LEVEL);
  const pools: pg.Pool[] = [];
  return {
    env,
    log,
    pgPool(opts) {
      const pool = createPgPool({
        ...opts,
        onError: (error) => log.warn({ err: error }, 'Postgres connection failed'),
      });
      pools.push(pool);
      return pool;
    },
    onStop(stop) {
      for (const signal of ['SIGTERM', 'SIGINT'] as const) {
        process.once(signal, () => {
          log.info({ signal }, 'stopping');
          void stop(signal)
            .then(() => Promise.all(pools.map((pool) => pool.end())))
            .then(
              () => {
                log.info('stopped');
                process.exit(0);
              },
              (error: unknown) => {
                log.fatal({ err: error }, `stop failed: ${error instanceof Error ? error.message : String(error)}`);
                process.exit(1);
              },
            );
        });
      }
    },
  };
}
