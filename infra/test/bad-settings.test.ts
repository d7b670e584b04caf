/**
 * The API, the applier and the relay start the same way (runnable-startup.ts in
 * @walnut/runtime): given the same environment with one bad value, each prints
 * the same line on stderr, `<program>: <setting>: <problem>`, nothing else, and
 * exits 2 before it connects to anything. A secret may come from the file
 * `<NAME>_FILE` names in all three. Until issue 25 item 4 the API and the
 * applier named the setting `DATABASE_URL` and the relay `DATABASE_URL (or
 * DATABASE_URL_FILE)`, and only the relay read the file.
 *
 * No Postgres or Kafka is needed: nothing gets that far.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { repoPath } from './repo.ts';

const exec = promisify(execFile);

const runnables = [
  { program: 'walnut-api', args: ['--import', 'tsx', 'packages/api/src/main.ts'] },
  { program: 'walnut-applier', args: ['--import', 'tsx', 'packages/applier/src/main.ts'] },
  // Its bin: the bundled build when current, as the image runs it.
  { program: 'walnut-relay', args: ['packages/cdc-relay/bin/walnut-relay.js'] },
];

/** Settings every runnable accepts, so each case's bad value is the only one. Nothing listens on port 9. */
const good = { KAFKA_BROKERS: '127.0.0.1:9', LOG_LEVEL: 'info' };

interface Outcome {
  code: number;
  stdout: string;
  stderr: string;
}

/** Starts a runnable with exactly `env` (and PATH), expecting it to refuse to start. */
async function start(args: string[], env: Record<string, string>): Promise<Outcome> {
  try {
    const { stdout, stderr } = await exec(process.execPath, args, {
      cwd: repoPath(),
      env: { PATH: process.env.PATH ?? '', ...env },
      // One that starts after all must not hold the test: nothing here would answer it.
      timeout: 20_000,
      killSignal: 'SIGKILL',
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

/** What each runnable printed and how it exited, with `<program>` standing for its own name. */
async function outcomes(env: Record<string, string>): Promise<Array<Outcome & { program: string }>> {
  const results = [];
  for (const { program, args } of runnables) {
    const outcome = await start(args, env);
    results.push({
      program,
      code: outcome.code,
      stdout: outcome.stdout,
      stderr: outcome.stderr.replaceAll(program, '<program>'),
    });
  }
  return results;
}

function assertAllRefuse(results: Array<Outcome & { program: string }>, line: string): void {
  for (const { program, code, stdout, stderr } of results) {
    assert.is(stderr, `${line}\n`, `${program}'s stderr`);
    assert.is(stdout, '', `${program} logs nothing before its settings parse`);
    assert.is(code, 2, `${program}'s exit code`);
  }
}

function tempFile(name: string, text: string): string {
  const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'walnut-bad-settings-')), name);
  writeFileSync(file, text);
  return file;
}

const bad = suite('one bad value: the same line and exit code from every runnable');

bad('a malformed DATABASE_URL', async () => {
  const results = await outcomes({ ...good, DATABASE_URL: 'mysql://walnut:secret-pw@db/walnut' });
  assertAllRefuse(
    results,
    '<program>: DATABASE_URL (or DATABASE_URL_FILE): must start with postgres:// or postgresql://',
  );
  for (const { stderr } of results) assert.not.match(stderr, 'secret-pw', 'the password is never printed');
});

bad('a malformed DATABASE_URL from DATABASE_URL_FILE, which wins over DATABASE_URL, trimmed', async () => {
  const file = tempFile('database-url', 'postgres://127.0.0.1:9/walnut?target_session_attrs=master\n');
  const results = await outcomes({ ...good, DATABASE_URL: 'postgres://127.0.0.1:9/walnut', DATABASE_URL_FILE: file });
  assertAllRefuse(
    results,
    '<program>: DATABASE_URL (or DATABASE_URL_FILE): target_session_attrs=master: want one of any, read-write, read-only, primary, standby, prefer-standby',
  );
});

bad('a DATABASE_URL_FILE that cannot be read', async () => {
  const missing = path.join(os.tmpdir(), `walnut-no-such-file-${process.pid}`);
  assertAllRefuse(
    await outcomes({ ...good, DATABASE_URL_FILE: missing }),
    `<program>: DATABASE_URL_FILE: cannot read ${missing}: ENOENT: no such file or directory, open '${missing}'`,
  );
});

bad.run();
