/**
 * The stack's Postgres comes from the registry builds pnpm installed, one per
 * major; WALNUT_PG_VERSION picks it, PG_BIN overrides it. No cluster is started.
 */
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { StackError } from '../src/errors.ts';
import { PG_VERSIONS, pgVersion, postgresBinaries } from '../src/pg-binaries.ts';

const binaries = suite('postgres binaries');

binaries('WALNUT_PG_VERSION: 18 by default, a bad value is BAD_ENV naming the allowed ones', () => {
  assert.is(pgVersion({}), '18');
  assert.is(pgVersion({ WALNUT_PG_VERSION: '14' }), '14');
  try {
    pgVersion({ WALNUT_PG_VERSION: '13' });
    assert.unreachable('13 was accepted');
  } catch (error) {
    assert.instance(error, StackError);
    assert.is((error as StackError).code, 'BAD_ENV');
    assert.match((error as Error).message, '14, 15, 16, 17, 18');
  }
});

binaries('each version resolves to its registry build, which runs', async () => {
  for (const version of PG_VERSIONS) {
    const { dir, source } = await postgresBinaries({ WALNUT_PG_VERSION: version });
    assert.match(source, `registry postgres-${version}`);
    const printed = execFileSync(path.join(dir, 'postgres'), ['--version'], { encoding: 'utf8' });
    assert.match(printed, `(PostgreSQL) ${version}.`);
  }
});

binaries('PG_BIN wins over the version', async () => {
  const { dir } = await postgresBinaries({ WALNUT_PG_VERSION: '16' });
  assert.equal(await postgresBinaries({ PG_BIN: dir, WALNUT_PG_VERSION: '17' }), { dir, source: 'PG_BIN' });
});

binaries.run();
