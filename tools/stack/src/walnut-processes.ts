import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

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

const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));

/** A Node script of the repo in a child process, with its output kept for assertions. */
export class WalnutProcess {
  readonly output: string[] = [];
  private exited: Promise<number | null>;
  private lineWaiters: Array<{ pattern: RegExp; resolve: (line: string) => void }> = [];

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

  tail(lines = 30): string {
    return this.output.slice(-lines).join('\n');
  }

  private onLine(line: string): void {
    this.output.push(line);
    if (this.output.length > 5_000) this.output.splice(0, 1_000);
    if (process.env.WALNUT_TEST_VERBOSE) process.stderr.write(`[${this.name}] ${line}\n`);
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
  return startNodeScript(name, entrypoints[name], [], env, nodeArgs);
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
