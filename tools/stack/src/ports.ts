import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';

/** A TCP port on 127.0.0.1 that nothing listens on right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => {
        if (address && typeof address === 'object') resolve(address.port);
        else reject(new Error('no port assigned'));
      });
    });
  });
}

/** Whether a port can be bound on 127.0.0.1 right now. */
export function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.unref();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/**
 * `count` distinct ports, the ones saved in `file` when they are all still
 * free (so a dev restart keeps its URLs), else fresh ones, saved for next time.
 * `avoid`: ports already handed to processes that have not bound them yet
 * (the other nodes of a cluster), which look free but are taken.
 */
export async function rememberedPorts(file: string, count: number, avoid: readonly number[] = []): Promise<number[]> {
  if (existsSync(file)) {
    const saved = (await readFile(file, 'utf8')).trim().split(/\s+/).map(Number);
    const valid = saved.length === count && saved.every((p) => Number.isInteger(p) && p > 0 && p < 65_536);
    if (valid && new Set(saved).size === count && !saved.some((p) => avoid.includes(p))) {
      const free = await Promise.all(saved.map(portIsFree));
      if (free.every(Boolean)) return saved;
    }
  }
  const ports: number[] = [];
  while (ports.length < count) {
    const port = await freePort();
    if (!ports.includes(port) && !avoid.includes(port)) ports.push(port);
  }
  await writeFile(file, `${ports.join(' ')}\n`);
  return ports;
}
