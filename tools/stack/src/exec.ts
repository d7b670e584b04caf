import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { accessSync, constants, readFileSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import path from 'node:path';
import { StackError, type StackErrorCode } from './errors.ts';

export const isRoot = process.getuid?.() === 0;

/**
 * argv that runs `command` as the postgres OS user when we are root, because
 * initdb and postgres refuse to run as root; unchanged otherwise.
 */
export function asPostgresArgv(command: string, args: readonly string[]): [string, string[]] {
  return isRoot ? ['runuser', ['-u', 'postgres', '--', command, ...args]] : [command, [...args]];
}

/**
 * Runs a command to completion and returns its combined output; fails with
 * the output in the message, since that is what explains the failure.
 */
export function run(
  command: string,
  args: readonly string[],
  opts: { code: StackErrorCode; asPostgres?: boolean; env?: NodeJS.ProcessEnv; cwd?: string },
): Promise<string> {
  const [file, argv] = opts.asPostgres ? asPostgresArgv(command, args) : [command, [...args]];
  return new Promise((resolve, reject) => {
    const child = spawn(file, argv, { env: opts.env ?? process.env, cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk) => {
      output += chunk;
    });
    child.stderr.on('data', (chunk) => {
      output += chunk;
    });
    child.once('error', (error) =>
      reject(new StackError(opts.code, `could not run ${command}: ${error.message}`, { cause: error })),
    );
    child.once('close', (code, signal) => {
      if (code === 0) resolve(output);
      else
        reject(new StackError(opts.code, `${command} ${args.join(' ')} exited ${code ?? signal}:\n${output.trim()}`));
    });
  });
}

/**
 * Runs a command in the foreground (its stdio is ours) and returns its exit
 * status, 128 + n for a signal, 127 when it cannot be run. The terminal already
 * sends Ctrl-C to the whole process group; forwarding covers a signal sent to
 * this process alone (CI timeouts, `kill <pid>`).
 */
export async function runForeground(
  command: string,
  args: readonly string[],
  env: NodeJS.ProcessEnv,
  log: (line: string) => void,
): Promise<number> {
  const child = spawn(command, args, { stdio: 'inherit', env });
  const forward = (signal: NodeJS.Signals) => child.kill(signal);
  process.on('SIGINT', forward);
  process.on('SIGTERM', forward);
  try {
    const [code, signal] = (await once(child, 'exit')) as [number | null, NodeJS.Signals | null];
    return code ?? 128 + (signal ? osConstants.signals[signal] : 0);
  } catch (error) {
    log(`could not run ${command}: ${(error as Error).message}`);
    return 127;
  } finally {
    process.off('SIGINT', forward);
    process.off('SIGTERM', forward);
  }
}

/** A shell's export lines for these variables (what stack.env holds). */
export function exportLines(env: Record<string, string>): string[] {
  return Object.entries(env).map(([k, v]) => `export ${k}=${shellQuote(v)}`);
}

/** Exit status of a command run synchronously as the postgres user when root; for exit hooks and probes. */
export function runSync(command: string, args: readonly string[], opts: { asPostgres?: boolean } = {}): number | null {
  const [file, argv] = opts.asPostgres ? asPostgresArgv(command, args) : [command, [...args]];
  return spawnSync(file, argv, { stdio: 'ignore' }).status;
}

/** The absolute path of an executable: as given when it contains a slash, else looked up on PATH. */
export function findExecutable(name: string): string | undefined {
  const candidates = name.includes('/')
    ? [name]
    : (process.env.PATH ?? '').split(path.delimiter).map((dir) => path.join(dir || '.', name));
  return candidates.find((file) => {
    try {
      accessSync(file, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/** The last lines of a log file, to put the reason for a failed start into the error itself. */
export function tailFile(file: string, lines = 20): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/** Quotes one word for /bin/sh, which is what pg_ctl hands its -o options to. */
export function shellQuote(word: string): string {
  return `'${word.replaceAll("'", `'\\''`)}'`;
}
