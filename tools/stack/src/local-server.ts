import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { connect } from 'node:net';
import { StackError } from './errors.ts';
import { tailFile } from './exec.ts';
import { onHarnessExit } from './exit-hooks.ts';
import { waitFor } from './wait-for.ts';
import { deadMansSwitch } from './watchdog.ts';

/** A server process the harness owns (redis-server, nats-server): started, stopped, crashed, hung. */
export interface LocalServer {
  /** Starts it (again, on the same arguments) and resolves once `ready` says it serves. */
  start(): Promise<void>;
  /** SIGTERM (after a SIGCONT, in case it is frozen), then resolves once it is gone. */
  stop(): Promise<void>;
  /** SIGKILLs it, as a crash of the process would (what it wrote to its files survives). */
  kill(): Promise<void>;
  /** SIGSTOPs it: connections stay open and nothing is answered, as a stalled server or network would. */
  freeze(): void;
  /** SIGCONTs it after freeze(). */
  thaw(): void;
}

/**
 * Runs `command args` in a process group of its own (so a signal reaches any
 * child it forks, such as Redis's append-only-file rewrite). Like Postgres and
 * Kafka it cannot outlive the harness: an exit hook and a dead man's switch
 * kill the group.
 */
export function localServer(opts: {
  command: string;
  args: readonly string[];
  /** Its log, shown when it exits while starting. */
  logFile: string;
  /** True once it serves; polled every 50 ms for up to 30 s. */
  ready: () => Promise<boolean>;
}): LocalServer {
  const { command, logFile } = opts;
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
    // A frozen server would act on a SIGTERM only once thawed.
    signalGroup(proc, 'SIGCONT');
    signalGroup(proc, signal);
    await exited;
    child = undefined;
    watchdog?.disarm();
    watchdog = undefined;
  };

  return {
    async start() {
      if (child) return;
      const proc = spawn(command, opts.args, { stdio: 'ignore', detached: true });
      child = proc;
      proc.on('exit', () => {
        if (child === proc) child = undefined;
      });
      watchdog = proc.pid ? deadMansSwitch('kill', ['-9', '--', `-${proc.pid}`]) : undefined;
      await waitFor(
        command,
        async () => {
          if (child !== proc) {
            throw new StackError('PROCESS_EXITED', `${command} exited; its log:\n${tailFile(logFile, 20)}`);
          }
          return await opts.ready();
        },
        { timeoutMs: 30_000, intervalMs: 50 },
      );
    },
    stop: () => gone('SIGTERM'),
    kill: () => gone('SIGKILL'),
    freeze: () => {
      if (child) signalGroup(child, 'SIGSTOP');
    },
    thaw: () => {
      if (child) signalGroup(child, 'SIGCONT');
    },
  };
}

function signalGroup(proc: ChildProcess, signal: NodeJS.Signals): void {
  try {
    if (proc.pid) process.kill(-proc.pid, signal);
  } catch {
    proc.kill(signal);
  }
}

/**
 * The first line a server at 127.0.0.1:`port` answers (after `send`, if
 * given), or null when it does not answer within a second.
 */
export function firstLine(port: number, send?: string): Promise<string | null> {
  return new Promise((resolve) => {
    const socket = connect({ port, host: '127.0.0.1' });
    let reply = '';
    const done = (line: string | null) => {
      socket.destroy();
      resolve(line);
    };
    socket.setTimeout(1_000, () => done(null));
    socket.on('error', () => done(null));
    if (send) socket.on('connect', () => socket.write(send));
    socket.on('data', (chunk) => {
      reply += chunk.toString('latin1');
      const end = reply.indexOf('\r\n');
      if (end >= 0) done(reply.slice(0, end));
    });
  });
}
