import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdir } from 'node:fs/promises';
import { connect } from 'node:net';
import path from 'node:path';
import { StackError } from './errors.ts';
import { runSync, tailFile } from './exec.ts';
import { onHarnessExit } from './exit-hooks.ts';
import { freePort } from './ports.ts';
import { waitFor } from './wait-for.ts';
import { deadMansSwitch } from './watchdog.ts';

export interface RedisHandle {
  /** redis://127.0.0.1:<port> */
  url: string;
  port: number;
  /** Where the append-only file and redis.log live. */
  dir: string;
  /** SHUTDOWN-like stop (SIGTERM: Redis fsyncs and exits), then resolves once it is gone. */
  stop(): Promise<void>;
  /** Starts it again on the same port and dir; it reloads its append-only file. */
  start(): Promise<void>;
  /** SIGKILLs it, as a machine crash would (whatever the AOF has fsynced survives). */
  kill(): Promise<void>;
}

/** Whether Debian's redis-server (the `redis-server` package) is on PATH. */
export function redisServerInstalled(): boolean {
  return runSync('sh', ['-c', 'command -v redis-server']) === 0;
}

/**
 * A private redis-server on a free port, its files in `<dir>`: appendonly yes
 * with appendfsync always, so an acked XADD is on disk before the reply and a
 * SIGKILL loses nothing acked (docs/relay.md, Redis Streams). Started only by
 * the tests that ask for it. Like Postgres and Kafka it cannot outlive the
 * harness: an exit hook and a dead man's switch kill it.
 */
export async function startRedis(opts: { dir: string; log?: (line: string) => void }): Promise<RedisHandle> {
  if (!redisServerInstalled()) {
    throw new StackError(
      'TOOL_MISSING',
      'redis-server is not installed (Debian: apt-get install redis-server; ./walnut install does it)',
    );
  }
  const log = opts.log ?? (() => {});
  const dir = path.resolve(opts.dir);
  await mkdir(dir, { recursive: true });
  const port = await freePort();
  const logFile = path.join(dir, 'redis.log');
  let child: ChildProcess | undefined;
  let watchdog: { disarm(): void } | undefined;
  onHarnessExit(() => {
    if (child) signalGroup(child, 'SIGKILL');
    watchdog?.disarm();
  });

  const gone = async (signal: NodeJS.Signals) => {
    const proc = child;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) {
      child = undefined;
      return;
    }
    const exited = once(proc, 'exit');
    // The whole group: an append-only-file rewrite runs in a forked child, which must die too.
    signalGroup(proc, signal);
    await exited;
    child = undefined;
    watchdog?.disarm();
    watchdog = undefined;
  };

  const start = async () => {
    if (child) return;
    // The options a durable deployment sets (docs/relay.md): every write fsynced before its reply.
    const args = [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--dir',
      dir,
      '--appendonly',
      'yes',
      '--appendfsync',
      'always',
      '--save',
      '',
      '--logfile',
      logFile,
      '--daemonize',
      'no',
    ];
    // Its own process group (detached), so a kill reaches a rewrite child it has forked.
    const proc = spawn('redis-server', args, { stdio: 'ignore', detached: true });
    child = proc;
    proc.on('exit', () => {
      if (child === proc) child = undefined;
    });
    watchdog = proc.pid ? deadMansSwitch('kill', ['-9', '--', `-${proc.pid}`]) : undefined;
    log(`redis-server on ${port}, files in ${dir}`);
    await waitFor(
      `redis-server on ${port}`,
      async () => {
        if (child !== proc) {
          throw new StackError('PROCESS_EXITED', `redis-server exited; its log:\n${tailFile(logFile, 20)}`);
        }
        return await pong(port);
      },
      { timeoutMs: 30_000, intervalMs: 50 },
    );
  };

  await start();
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    dir,
    stop: () => gone('SIGTERM'),
    start,
    kill: () => gone('SIGKILL'),
  };
}

function signalGroup(proc: ChildProcess, signal: NodeJS.Signals): void {
  try {
    if (proc.pid) process.kill(-proc.pid, signal);
  } catch {
    proc.kill(signal);
  }
}

/** PING answered PONG: up, and done loading its append-only file (until then it answers -LOADING). */
function pong(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ port, host: '127.0.0.1' });
    let reply = '';
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1_000, () => done(false));
    socket.on('error', () => done(false));
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk) => {
      reply += chunk.toString('latin1');
      if (reply.includes('\r\n')) done(reply.startsWith('+PONG'));
    });
  });
}
