import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { StackError } from './errors.ts';
import { runSync } from './exec.ts';
import { firstLine, type LocalServer, localServer } from './local-server.ts';
import { freePort } from './ports.ts';

export interface RedisHandle extends LocalServer {
  /** redis://127.0.0.1:<port> */
  url: string;
  port: number;
  /** Where the append-only file and redis.log live. stop() is SHUTDOWN-like (SIGTERM: Redis fsyncs and exits); kill() loses what the AOF has not fsynced; start() reloads the AOF. */
  dir: string;
}

/** Whether Debian's redis-server (the `redis-server` package) is on PATH. */
export function redisServerInstalled(): boolean {
  return runSync('sh', ['-c', 'command -v redis-server']) === 0;
}

/**
 * A private redis-server on a free port, its files in `<dir>`: appendonly yes
 * with appendfsync always, so an acked XADD is on disk before the reply and a
 * SIGKILL loses nothing acked (docs/relay.md, Redis Streams). Started only by
 * the tests that ask for it; it cannot outlive the harness (local-server.ts).
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
  // PING answered PONG: up, and done loading its append-only file (until then it answers -LOADING).
  const server = localServer({
    command: 'redis-server',
    args,
    logFile,
    ready: async () => (await firstLine(port, 'PING\r\n')) === '+PONG',
  });
  const start = async () => {
    log(`redis-server on ${port}, files in ${dir}`);
    await server.start();
  };

  await start();
  return { url: `redis://127.0.0.1:${port}`, port, dir, ...server, start };
}
