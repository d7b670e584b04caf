/**
 * The API through PgBouncer in transaction mode, as compose runs it: writes,
 * batches, Idempotency-Key, status and read-your-writes all work while 100
 * concurrent requests share 2 server connections, so nothing relies on session
 * state. The LISTEN session of `?after=` goes direct (API_LISTEN_DATABASE_URL),
 * and so does the relay: PgBouncer cannot proxy a replication connection.
 *
 * Needs the `pgbouncer` binary (Debian: `apt-get install pgbouncer`); skipped
 * with a printed reason when it is absent.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  call,
  freePort,
  startWalnutProcess,
  type WalnutFixture,
  type WalnutProcess,
  waitApplied,
  waitFor,
  walnutFixture,
  write,
} from '@walnut/stack';
import pg from 'pg';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';

const SERVER_POOL_SIZE = 2;

interface Ctx {
  walnut: WalnutFixture;
  bouncer: ChildProcess;
  bouncerPort: number;
  dir: string;
  api: WalnutProcess;
  url: string;
}

const bouncer = suite<Ctx>('pgbouncer');

function pgbouncerBinary(): string | undefined {
  for (const candidate of ['/usr/sbin/pgbouncer', '/usr/bin/pgbouncer']) {
    try {
      execFileSync(candidate, ['--version'], { stdio: 'ignore' });
      return candidate;
    } catch {}
  }
  return undefined;
}

/** PgBouncer refuses to run as root; run it as the postgres OS user then, like the stack's Postgres. */
function runAs(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const entry = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((line) => line.startsWith('postgres:'));
  if (!entry) throw new Error('running as root and there is no postgres OS user to run pgbouncer as');
  const [, , uid, gid] = entry.split(':');
  return { uid: Number(uid), gid: Number(gid) };
}

const binary = pgbouncerBinary();
if (!binary) {
  console.log('  pgbouncer.test.ts skipped: no pgbouncer binary (Debian: apt-get install pgbouncer)');
} else {
  bouncer.before(async (ctx) => {
    ctx.walnut = await walnutFixture('pgbouncer', { env: { APPLIER_HTTP_PORT: '0' } });
    const direct = new URL(ctx.walnut.databaseUrl);
    ctx.bouncerPort = await freePort();
    ctx.dir = mkdtempSync(path.join(tmpdir(), 'walnut-pgbouncer-'));
    chmodSync(ctx.dir, 0o755);
    const ini = path.join(ctx.dir, 'pgbouncer.ini');
    writeFileSync(
      ini,
      [
        '[databases]',
        `* = host=${direct.hostname} port=${direct.port} user=${direct.username || 'postgres'}`,
        '[pgbouncer]',
        'listen_addr = 127.0.0.1',
        `listen_port = ${ctx.bouncerPort}`,
        'unix_socket_dir =',
        'auth_type = any',
        'pool_mode = transaction',
        `default_pool_size = ${SERVER_POOL_SIZE}`,
        'max_client_conn = 200',
        'admin_users = postgres',
      ].join('\n'),
    );
    chmodSync(ini, 0o644);
    const user = runAs();
    ctx.bouncer = spawn(binary, [ini], { stdio: ['ignore', 'ignore', 'pipe'], ...user });
    let log = '';
    ctx.bouncer.stderr?.on('data', (chunk) => {
      log += chunk;
    });
    const bouncerUrl = new URL(ctx.walnut.databaseUrl);
    bouncerUrl.port = String(ctx.bouncerPort);
    await waitFor(
      `pgbouncer to accept connections\n${log}`,
      async () => {
        const client = new pg.Client({ connectionString: bouncerUrl.toString() });
        await client.connect();
        await client.end();
        return true;
      },
      { timeoutMs: 15_000 },
    );

    await ctx.walnut.startRelay();
    await ctx.walnut.startApplier();
    const port = await freePort();
    ctx.api = startWalnutProcess('api', {
      ...ctx.walnut.env,
      API_PORT: String(port),
      DATABASE_URL: bouncerUrl.toString(),
      API_LISTEN_DATABASE_URL: ctx.walnut.databaseUrl,
    });
    await ctx.api.waitForLine(/api listening/);
    ctx.url = `http://127.0.0.1:${port}`;
  });

  bouncer.after(async (ctx) => {
    await ctx.api?.stop('SIGKILL');
    await ctx.walnut.close();
    ctx.bouncer?.kill('SIGTERM');
    rmSync(ctx.dir, { recursive: true, force: true });
  });

  bouncer('writes, batches, idempotency, status and ?after= work through transaction pooling', async (ctx) => {
    const { url } = ctx;
    const ids = await Promise.all(
      Array.from({ length: 100 }, (_, i) => write(url, 'PUT', `/kv/pooled-${i}`, { value: i })),
    );
    const batch = await write(url, 'POST', '/kv/batch', {
      ops: [
        { op: 'set', key: 'pooled-batch', value: 'b' },
        { op: 'delete', key: 'pooled-0' },
      ],
    });
    const idem = { 'idempotency-key': 'through-bouncer' };
    const first = await write(url, 'PUT', '/kv/pooled-idem', { value: 1 }, idem);
    assert.is(await write(url, 'PUT', '/kv/pooled-idem', { value: 1 }, idem), first);

    const read = await call(url, 'GET', `/kv/pooled-batch?after=${batch}`);
    assert.is(read.status, 200, JSON.stringify(read.body));
    assert.is(read.body.value, 'b');
    assert.is((await call(url, 'GET', '/kv/pooled-0')).status, 404);
    for (const id of [...ids, first]) await waitApplied(url, id);
    const list = await call(url, 'GET', '/kv?prefix=pooled-&limit=1000');
    assert.is(list.body.items.length, 100 - 1 + 2);
    assert.is((await call(url, 'GET', '/ready')).status, 200);
  });

  bouncer('PgBouncer carried the API’s transactions on at most its pool of server connections', async (ctx) => {
    const admin = new pg.Client({
      connectionString: `postgres://postgres@127.0.0.1:${ctx.bouncerPort}/pgbouncer`,
    });
    await admin.connect();
    try {
      const database = new URL(ctx.walnut.databaseUrl).pathname.slice(1);
      const pools = (await admin.query('SHOW POOLS')).rows.filter((r) => r.database === database);
      assert.is(pools.length, 1, JSON.stringify(pools));
      assert.is(pools[0].pool_mode, 'transaction');
      const servers = (await admin.query('SHOW SERVERS')).rows.filter((r) => r.database === database);
      assert.ok(servers.length <= SERVER_POOL_SIZE, `${servers.length} server connections`);
      const stats = (await admin.query('SHOW STATS')).rows.find((r) => r.database === database);
      console.log(`  ${stats.total_xact_count} transactions over ${servers.length} server connections`);
      assert.ok(Number(stats.total_xact_count) >= 100);
    } finally {
      await admin.end();
    }
  });
}

bouncer.run();
