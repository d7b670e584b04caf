import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { waitFor } from './wait-for.ts';

/**
 * The runnables of the repo, started the way compose starts them. The relay
 * runs through its bin, i.e. its bundled build when that is current (what the
 * image ships), else its sources.
 */
const entrypoints = {
  api: 'packages/api/src/main.ts',
  relay: 'packages/cdc-relay/bin/walnut-relay.js',
  applier: 'packages/applier/src/main.ts',
} as const;

export type WalnutRunnable = keyof typeof entrypoints;

/**
 * How node runs the relay, as its image does (packages/cdc-relay/Dockerfile): a 4 MB young
 * generation instead of 16 MB, an old generation that may double between full GCs (V8 lets a
 * small heap grow up to four times), and one malloc arena. Measured side by side on 200,000-row
 * drains, each lowers peak RSS at no clear cost in CPU per event. A fixed malloc trim threshold
 * (glibc's default, which it otherwise raises to twice the largest buffer freed) lets an idle
 * relay give back the free heap start-up leaves (docs/decisions/relay-memory.md). Tests and the
 * bench measure the relay as it ships.
 */
export const RELAY_NODE_ARGS: readonly string[] = ['--max-semi-space-size=4', '--heap-growing-percent=100'];
export const RELAY_PROCESS_ENV: Readonly<Record<string, string>> = {
  MALLOC_ARENA_MAX: '1',
  MALLOC_TRIM_THRESHOLD_: '131072',
};

const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));

/** A Node script of the repo in a child process, with its output kept for assertions. */
export class WalnutProcess {
  readonly output: string[] = [];
  private exited: Promise<number | null>;
  private lineWaiters: Array<{ pattern: RegExp; resolve: (line: string) => void }> = [];
  private lineListeners: Array<(line: string) => void> = [];

  constructor(
    readonly name: string,
    readonly child: ChildProcess,
  ) {
    this.exited = once(child, 'exit').then(([code]) => code as number | null);
    let partial = '';
    const onChunk = (chunk: Buffer) => {
      const lines = (partial + chunk.toString('utf8')).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) this.onLine(line);
    };
    child.stdout?.on('data', onChunk);
    child.stderr?.on('data', onChunk);
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Resolves with the first output line, past or future, matching pattern. */
  waitForLine(pattern: RegExp, timeoutMs = 60_000): Promise<string> {
    const seen = this.output.find((line) => pattern.test(line));
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new Error(`${this.name} printed no line matching ${pattern} within ${timeoutMs} ms:\n${this.tail()}`));
      }, timeoutMs);
      this.lineWaiters.push({
        pattern,
        resolve: (line) => {
          clearTimeout(timer);
          resolve(line);
        },
      });
      void this.exited.then((code) => {
        clearTimeout(timer);
        reject(new Error(`${this.name} exited (${code}) before printing ${pattern}:\n${this.tail()}`));
      });
    });
  }

  /** Sends a signal and waits for the exit code (null when killed by a signal). */
  async stop(signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 30_000): Promise<number | null> {
    if (!this.running) return this.child.exitCode;
    this.child.kill(signal);
    const timer = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Resident set size from /proc (Linux), or null once the process is gone. */
  rssBytes(): number | null {
    try {
      const status = readFileSync(`/proc/${this.child.pid}/status`, 'utf8');
      const kb = /VmRSS:\s+(\d+) kB/.exec(status)?.[1];
      return kb ? Number(kb) * 1024 : null;
    } catch {
      return null;
    }
  }

  /** Calls `listener` with every line printed from now on (output keeps only the last few thousand). */
  listen(listener: (line: string) => void): void {
    this.lineListeners.push(listener);
  }

  tail(lines = 30): string {
    return this.output.slice(-lines).join('\n');
  }

  private onLine(line: string): void {
    this.output.push(line);
    if (this.output.length > 5_000) this.output.splice(0, 1_000);
    if (process.env.WALNUT_TEST_VERBOSE) process.stderr.write(`[${this.name}] ${line}\n`);
    for (const listener of this.lineListeners) listener(line);
    this.lineWaiters = this.lineWaiters.filter((waiter) => {
      if (!waiter.pattern.test(line)) return true;
      waiter.resolve(line);
      return false;
    });
  }
}

/** `nodeArgs` go to node itself, before the script (e.g. `--cpu-prof`, which NODE_OPTIONS refuses). */
export function startWalnutProcess(
  name: WalnutRunnable,
  env: Record<string, string>,
  nodeArgs: readonly string[] = [],
): WalnutProcess {
  if (name === 'relay')
    return startNodeScript(name, entrypoints.relay, [], relayEnv(env), [...RELAY_NODE_ARGS, ...nodeArgs]);
  return startNodeScript(name, entrypoints[name], [], env, nodeArgs);
}

function relayEnv(env: Record<string, string>): Record<string, string> {
  return { ...RELAY_PROCESS_ENV, ...env };
}

/** Any TypeScript entrypoint (a path from the repo root or absolute), run with tsx like the runnables. */
export function startNodeScript(
  name: string,
  script: string,
  args: readonly string[],
  env: Record<string, string>,
  nodeArgs: readonly string[] = [],
): WalnutProcess {
  // A plain .js entrypoint (the relay's bin) loads tsx itself only if it needs it.
  const loader = script.endsWith('.ts') ? ['--import', 'tsx'] : [];
  const child = spawn(process.execPath, [...nodeArgs, ...loader, script, ...args], {
    cwd: repoRoot,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return new WalnutProcess(name, child);
}

/** A relay CLI command (`snapshot`, `replay`, …) as an operator runs it, through the relay's bin. */
export function startRelayCli(name: string, args: readonly string[], env: Record<string, string>): WalnutProcess {
  return startNodeScript(name, entrypoints.relay, args, relayEnv(env), RELAY_NODE_ARGS);
}

const execFileAsync = promisify(execFile);

/** A short relay CLI command (`slot create`, `publication sync`, …) run to its end; a failure is a result, not a throw. */
export async function runRelayCli(
  args: readonly string[],
  env: Record<string, string>,
): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await execFileAsync(process.execPath, [entrypoints.relay, ...args], {
      cwd: repoRoot,
      env: { ...process.env, ...env },
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

/** Waits for a process to exit; its exit code (null when a signal ended it). */
export async function exitCode(run: WalnutProcess, timeoutMs = 120_000): Promise<number | null> {
  await waitFor(`${run.name} to exit`, async () => !run.running, { timeoutMs, intervalMs: 100 });
  return run.child.exitCode;
}

/** The pino time of the first line at or after `from` (an index into output) matching `pattern`. */
export async function lineTime(p: WalnutProcess, from: number, pattern: RegExp, timeoutMs: number): Promise<number> {
  let found: string | undefined;
  await waitFor(
    `${p.name} (pid ${p.pid}) to print ${pattern}`,
    async () => {
      found = p.output.slice(from).find((line) => pattern.test(line));
      return found !== undefined;
    },
    { timeoutMs, intervalMs: 20 },
  );
  return (JSON.parse(found as string) as { time: number }).time;
}

/** A runnable's HTTP base URL (`http://127.0.0.1:<port>`), from the "http listening" line it logs once bound. */
export async function httpUrl(p: WalnutProcess, timeoutMs = 60_000): Promise<string> {
  const { port } = JSON.parse(await p.waitForLine(/http listening/, timeoutMs)) as { port: number };
  return `http://127.0.0.1:${port}`;
}
