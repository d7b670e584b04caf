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

export interface NatsHandle {
  /** nats://127.0.0.1:<port> */
  url: string;
  port: number;
  /** Where JetStream's store (jetstream/) and nats.log live. */
  dir: string;
  /** SIGTERM (lame-duck free shutdown: it flushes its stores), then resolves once it is gone. */
  stop(): Promise<void>;
  /** Starts it again on the same port and dir; it recovers its streams from the store. */
  start(): Promise<void>;
  /** SIGKILLs it, as a crash of the process would (what it wrote to its files survives). */
  kill(): Promise<void>;
  /** SIGSTOPs it: connections stay open and nothing is answered, as a stalled server or network would. */
  freeze(): void;
  /** SIGCONTs it after freeze(). */
  thaw(): void;
}

/** Whether Debian's nats-server (the `nats-server` package) is on PATH. */
export function natsServerInstalled(): boolean {
  return runSync('sh', ['-c', 'command -v nats-server']) === 0;
}

/**
 * A private nats-server with JetStream (`-js -sd <dir>`) on a free port: file
 * storage, so a SIGKILL loses no message it acked (docs/relay.md, NATS
 * JetStream). Started only by the tests that ask for it. Like Postgres and
 * Kafka it cannot outlive the harness: an exit hook and a dead man's switch
 * kill it.
 */
export async function startNats(opts: {
  dir: string;
  /** More nats-server arguments, e.g. `--user u --pass p` to require a login. */
  args?: readonly string[];
  log?: (line: string) => void;
}): Promise<NatsHandle> {
  if (!natsServerInstalled()) {
    throw new StackError(
      'TOOL_MISSING',
      'nats-server is not installed (Debian: apt-get install nats-server; ./walnut install does it)',
    );
  }
  const log = opts.log ?? (() => {});
  const dir = path.resolve(opts.dir);
  await mkdir(dir, { recursive: true });
  const port = await freePort();
  const logFile = path.join(dir, 'nats.log');
  let child: ChildProcess | undefined;
  let watchdog: { disarm(): void } | undefined;
  onHarnessExit(() => {
    child?.kill('SIGKILL');
    watchdog?.disarm();
  });

  const gone = async (signal: NodeJS.Signals) => {
    const proc = child;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) {
      child = undefined;
      return;
    }
    const exited = once(proc, 'exit');
    // A frozen server would take a SIGTERM only once thawed.
    proc.kill('SIGCONT');
    proc.kill(signal);
    await exited;
    child = undefined;
    watchdog?.disarm();
    watchdog = undefined;
  };

  const start = async () => {
    if (child) return;
    const args = ['-js', '-sd', dir, '-a', '127.0.0.1', '-p', String(port), '-l', logFile, ...(opts.args ?? [])];
    const proc = spawn('nats-server', args, { stdio: 'ignore' });
    child = proc;
    proc.on('exit', () => {
      if (child === proc) child = undefined;
    });
    watchdog = proc.pid ? deadMansSwitch('kill', ['-9', String(proc.pid)]) : undefined;
    log(`nats-server on ${port}, JetStream store in ${dir}`);
    await waitFor(
      `nats-server on ${port}`,
      async () => {
        if (child !== proc) {
          throw new StackError('PROCESS_EXITED', `nats-server exited; its log:\n${tailFile(logFile, 20)}`);
        }
        return await jetStreamInfo(port);
      },
      { timeoutMs: 30_000, intervalMs: 50 },
    );
  };

  await start();
  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    dir,
    stop: () => gone('SIGTERM'),
    start,
    kill: () => gone('SIGKILL'),
    freeze: () => {
      child?.kill('SIGSTOP');
    },
    thaw: () => {
      child?.kill('SIGCONT');
    },
  };
}

/**
 * The server's greeting says JetStream is on. It listens for clients only
 * after JetStream has recovered its streams, so a client that connects finds them.
 */
function jetStreamInfo(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ port, host: '127.0.0.1' });
    let reply = '';
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1_000, () => done(false));
    socket.on('error', () => done(false));
    socket.on('data', (chunk) => {
      reply += chunk.toString('latin1');
      if (reply.includes('\r\n')) done(reply.startsWith('INFO ') && reply.includes('"jetstream":true'));
    });
  });
}
