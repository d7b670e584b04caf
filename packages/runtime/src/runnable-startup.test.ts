import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as z from 'zod';
import { int, logLevel } from './env.ts';
import { readSettings } from './runnable-startup.ts';

const schema = z.object({ DATABASE_URL: z.string().startsWith('postgres://'), PORT: int(1), LOG_LEVEL: logLevel });
const spec = { program: 'walnut-x', schema, secrets: ['DATABASE_URL'] };
const files: Record<string, string> = { '/run/secrets/db': 'postgres://from-file\n' };
const readFile = (path: string) => {
  const text = files[path];
  if (text === undefined) throw new Error(`ENOENT: ${path}`);
  return text;
};

test('settings parse from the environment, defaults applied', () => {
  const read = readSettings(spec, { DATABASE_URL: 'postgres://env', PORT: '80' }, readFile);
  assert.equal(read, { ok: true, env: { DATABASE_URL: 'postgres://env', PORT: 80, LOG_LEVEL: 'info' } });
});

test('a secret comes from <NAME>_FILE, trimmed, before the variable', () => {
  const read = readSettings(
    spec,
    { DATABASE_URL: 'postgres://env', DATABASE_URL_FILE: '/run/secrets/db', PORT: '80' },
    readFile,
  );
  assert.ok(read.ok && read.env.DATABASE_URL === 'postgres://from-file');
});

test('one line per bad value; a secret is named with its _FILE, its value never echoed', () => {
  const read = readSettings(spec, { DATABASE_URL: 'mysql://pw', PORT: '0', LOG_LEVEL: 'loud' }, readFile);
  assert.not.ok(read.ok);
  if (read.ok) return;
  assert.is(read.errors.length, 3);
  assert.match(read.errors[0] ?? '', /^walnut-x: DATABASE_URL \(or DATABASE_URL_FILE\): /);
  assert.match(read.errors[1] ?? '', /^walnut-x: PORT: /);
  assert.match(read.errors[2] ?? '', /^walnut-x: LOG_LEVEL: /);
  assert.not.match(read.errors.join('\n'), 'mysql://pw');
});

test('an unreadable secret file is a bad value of <NAME>_FILE', () => {
  const read = readSettings(spec, { DATABASE_URL_FILE: '/nope', PORT: '80' }, readFile);
  assert.equal(read, { ok: false, errors: ['walnut-x: DATABASE_URL_FILE: cannot read /nope: ENOENT: /nope'] });
});

test('given settings (the relay’s flags) replace the environment, except secrets; a label names the flag', () => {
  const read = readSettings(
    { ...spec, settings: { PORT: 'x' }, label: (name) => `--${name.toLowerCase()} / ${name}` },
    { DATABASE_URL: 'postgres://env', PORT: '80' },
    readFile,
  );
  assert.not.ok(read.ok);
  if (!read.ok) assert.equal(read.errors, ['walnut-x: --port / PORT: Invalid input: expected number, received NaN']);
});

test.run();
