/**
 * The README's front door for developers: `pnpm turbo run dev` from the repo
 * root brings up the stack task (which migrates, creates the publication and
 * the slot, and writes the env file) and the three runnables, which wait for
 * it; a write then round-trips to `kvs`, and the README's psql lines run as
 * written. Here the test's own Postgres and Kafka are given through
 * DATABASE_URL / KAFKA_BROKERS, so the stack task starts neither, and
 * WALNUT_DEV_DIR keeps its files out of a developer's .walnut.
 */
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, mkdtemp, readFile, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { freePort, type WalnutFixture, waitFor, walnutFixture } from '@walnut/stack';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';

const exec = promisify(execFile);
const repo = fileURLToPath(new URL('../../../', import.meta.url));
const dev = suite<{ walnut: WalnutFixture; dir: string }>('pnpm turbo run dev');

dev.before(async (ctx) => {
  ctx.walnut = await walnutFixture('dev_system');
  ctx.dir = await mkdtemp(path.join(tmpdir(), 'walnut-dev-'));
});

dev.after(async ({ walnut, dir }) => {
  await walnut?.close();
  await rm(dir, { recursive: true, force: true });
});

/** The README's shell lines under "How far behind is it": the env step, then psql. */
async function readmePsqlLines(): Promise<string[]> {
  const readme = await readFile(path.join(repo, 'README.md'), 'utf8');
  const at = readme.indexOf('How far behind is it');
  const block = /```sh\n([\s\S]*?)```/.exec(readme.slice(at))?.[1] ?? '';
  return block.split('\n').filter((line) => line.trim() !== '');
}

dev('brings up the system; a write is applied; the README psql lines run as written', async ({ walnut, dir }) => {
  const apiPort = await freePort();
  const env = {
    ...process.env,
    ...walnut.env,
    API_PORT: String(apiPort),
    WALNUT_DEV_DIR: dir,
    TURBO_TELEMETRY_DISABLED: '1',
    TURBO_UI: 'false',
  };
  const pnpm = path.join(repo, 'node_modules', '.bin', 'pnpm');
  // Its own process group, so the whole tree (turbo, pnpm, tsx, node) is stopped at the end.
  const child = spawn(pnpm, ['turbo', 'run', 'dev'], { cwd: repo, env, detached: true, stdio: 'pipe' });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    output += chunk.toString('utf8');
    if (process.env.WALNUT_TEST_VERBOSE) process.stderr.write(chunk);
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    output += chunk.toString('utf8');
  });
  const tail = () => output.split('\n').slice(-30).join('\n');
  try {
    await waitFor('the stack task to write its env file', async () => output.includes('ready; from another shell'), {
      timeoutMs: 120_000,
    }).catch((error: Error) => {
      throw new Error(`${error.message}\n${tail()}`);
    });
    await waitFor('the relay to stream', async () => output.includes('"msg":"relay streaming"'), {
      timeoutMs: 120_000,
    });
    const api = `http://127.0.0.1:${apiPort}`;
    await waitFor('the API', async () => (await fetch(`${api}/health`).catch(() => null))?.ok === true, {
      timeoutMs: 60_000,
    });
    const accepted = (await (
      await fetch(`${api}/kv`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ key: 'dev-greeting', value: { hello: 'world' } }),
      })
    ).json()) as { request_id: string };
    await waitFor(
      'the write to be applied',
      async () => {
        const status = (await (await fetch(`${api}/status/${accepted.request_id}`)).json()) as { status: string };
        return status.status === 'applied';
      },
      { timeoutMs: 60_000 },
    ).catch((error: Error) => {
      throw new Error(`${error.message}\n${tail()}`);
    });
    const value = (await (await fetch(`${api}/kv/dev-greeting`)).json()) as { value: unknown };
    assert.equal(value.value, { hello: 'world' });

    // The README's lines, verbatim, with its .walnut standing for this test's directory.
    const lines = await readmePsqlLines();
    assert.ok(lines[0]?.startsWith('source .walnut/stack.env'), lines.join('\n'));
    // Run from a directory whose .walnut is this test's: the lines name it relative to the repo.
    const cwd = path.join(dir, 'checkout');
    await mkdir(cwd);
    await symlink(dir, path.join(cwd, '.walnut'));
    const { stdout } = await exec('bash', ['-c', lines.join('\n')], { cwd, env: { PATH: process.env.PATH ?? '' } });
    assert.match(stdout, walnut.slot, 'replication_status lists the relay slot');
  } finally {
    try {
      process.kill(-(child.pid as number), 'SIGINT');
    } catch {}
    const exited = once(child, 'exit');
    const timer = setTimeout(() => {
      try {
        process.kill(-(child.pid as number), 'SIGKILL');
      } catch {}
    }, 15_000);
    await exited;
    clearTimeout(timer);
  }
});

dev.run();
