/**
 * The polling baseline deployed the way Walnut is, for end-to-end latency: the
 * same API and applier processes on a database of their own, with the polling
 * relay (its own process) in place of Walnut's. The API writes `outbox` as
 * usual; the relay polls that same table, so only the hop to Kafka differs.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import type { WalnutFixture } from '@walnut/stack';
import type { SystemUnderLoad } from './load-steps.ts';
import { addPollingColumns } from './polling-relay.ts';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const cli = fileURLToPath(new URL('./polling-relay-cli.ts', import.meta.url));

export async function startPollingDeployment(
  fixture: WalnutFixture,
): Promise<SystemUnderLoad & { stop(): Promise<void> }> {
  await addPollingColumns(fixture.pool, 'outbox');
  const applier = await fixture.startApplier();
  const relay = spawn(process.execPath, ['--import', 'tsx', cli, '--table', 'outbox', '--topic', fixture.topic], {
    cwd: repoRoot,
    env: { ...process.env, ...fixture.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = once(relay, 'exit').catch(() => {});
  let output: string[];
  let api: Awaited<ReturnType<WalnutFixture['startApi']>>;
  try {
    output = await waitForRunning(relay);
    api = await fixture.startApi();
  } catch (error) {
    relay.kill('SIGKILL');
    throw error;
  }
  const running = (p: ChildProcess) => p.exitCode === null && p.signalCode === null;
  return {
    name: 'polling',
    apiUrl: api.url,
    pool: fixture.pool,
    assertRunning() {
      if (!running(relay)) throw new Error(`polling relay exited: ${output.join('').trim().slice(-2000)}`);
      if (!applier.running) throw new Error(`applier exited:\n${applier.tail()}`);
      if (!api.process.running) throw new Error(`api exited:\n${api.process.tail()}`);
    },
    async stop() {
      if (running(relay)) relay.kill('SIGTERM');
      await exited;
      // The fixture's close() stops the API and applier it started.
    },
  };
}

/** Resolves with the relay's output so far once it says it is polling; rejects if it exits first. */
async function waitForRunning(child: ChildProcess, timeoutMs = 60_000): Promise<string[]> {
  const output: string[] = [];
  const seen = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`polling relay not running after ${timeoutMs} ms`)), timeoutMs);
    const onData = (chunk: Buffer) => {
      output.push(chunk.toString('utf8'));
      if (output.join('').includes('polling relay running')) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`polling relay exited (${code}) before running: ${output.join('').trim()}`));
    });
  });
  await seen;
  return output;
}
