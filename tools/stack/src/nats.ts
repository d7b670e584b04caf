import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { StackError } from './errors.ts';
import { runSync } from './exec.ts';
import { firstLine, type LocalServer, localServer } from './local-server.ts';
import { freePort } from './ports.ts';

export interface NatsHandle extends LocalServer {
  /** nats://127.0.0.1:<port> */
  url: string;
  port: number;
  /** Where JetStream's store (jetstream/) and nats.log live. start() recovers the streams from it; stop() flushes it. */
  dir: string;
}

/** Whether Debian's nats-server (the `nats-server` package) is on PATH. */
export function natsServerInstalled(): boolean {
  return runSync('sh', ['-c', 'command -v nats-server']) === 0;
}

/**
 * A private nats-server with JetStream (`-js -sd <dir>`) on a free port: file
 * storage, so a SIGKILL loses no message it acked (docs/relay.md, NATS
 * JetStream). Started only by the tests that ask for it; it cannot outlive
 * the harness (local-server.ts).
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
  const args = ['-js', '-sd', dir, '-a', '127.0.0.1', '-p', String(port), '-l', logFile, ...(opts.args ?? [])];
  // The greeting says JetStream is on. It listens for clients only after JetStream has recovered
  // its streams, so a client that connects finds them.
  const server = localServer({
    command: 'nats-server',
    args,
    logFile,
    ready: async () => {
      const greeting = await firstLine(port);
      return greeting?.startsWith('INFO ') === true && greeting.includes('"jetstream":true');
    },
  });
  const start = async () => {
    log(`nats-server on ${port}, JetStream store in ${dir}`);
    await server.start();
  };

  await start();
  return { url: `nats://127.0.0.1:${port}`, port, dir, ...server, start };
}
