/**
 * libpq's multi-host DATABASE_URL on real servers: a primary and a streaming
 * standby (tools/stack startStandby) plus a port where nothing listens. With
 * target_session_attrs=read-write the API/applier pool (createPgPool), the
 * relay's connections (connectPgClient) and migrations reach the primary
 * whatever the host order; after the primary is SIGKILLed and the standby
 * promoted, the same pool and new clients reach the promoted server, with no
 * restart. Needs servers the stack can start (not an external DATABASE_URL);
 * the API, relay and applier case also needs KAFKA_BROKERS (walnut-stack run).
 */
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createPgPool, PgNoHostError, runMigrations } from '@walnut/schema';
import {
  call,
  freePort,
  type PostgresHandle,
  type StandbyHandle,
  startPostgres,
  startStandby,
  waitApplied,
  waitFor,
  walnutFixture,
  write,
} from '@walnut/stack';
import type pg from 'pg';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { connectPgClient } from '../src/pg-client.ts';

interface Ctx {
  dir: string;
  primary: PostgresHandle;
  standby: StandbyHandle;
  /** A port with nothing behind it: a host that is down. */
  deadPort: number;
}

const multiHost = suite<Ctx>('multi-host DATABASE_URL');

multiHost.before(async (ctx) => {
  ctx.dir = mkdtempSync(path.join(tmpdir(), 'walnut-multi-host-'));
  chmodSync(ctx.dir, 0o755); // the postgres OS user must reach the clusters inside
  ctx.primary = await startPostgres({ dir: path.join(ctx.dir, 'primary') });
  // No slot sync: this suite is about finding the writable server, on any version.
  ctx.standby = await startStandby({ primary: ctx.primary, dir: path.join(ctx.dir, 'standby'), slotSync: false });
  ctx.deadPort = await freePort();
});

multiHost.after(async (ctx) => {
  await ctx.standby?.stop('immediate').catch(() => {});
  await ctx.primary?.stop('immediate').catch(() => {});
  if (ctx.dir) rmSync(ctx.dir, { recursive: true, force: true });
});

/** `ports` in that order, as one URL; `password` proves it never shows up in an error. */
function url(ports: number[], tsa = 'read-write'): string {
  const hosts = ports.map((p) => `127.0.0.1:${p}`).join(',');
  return `postgres://postgres:s3cret@${hosts}/walnut?target_session_attrs=${tsa}&application_name=multi-host-test`;
}

async function serverPort(client: pg.ClientBase | pg.Pool): Promise<number> {
  const r = await client.query<{ port: number }>('SELECT inet_server_port() AS port');
  return r.rows[0]?.port ?? -1;
}

async function clientPort(connectionString: string): Promise<number> {
  const client = await connectPgClient({ connectionString });
  try {
    return await serverPort(client);
  } finally {
    await client.end();
  }
}

multiHost('read-write finds the primary whatever the host order; the other modes pick as libpq does', async (ctx) => {
  const { primary, standby, deadPort } = ctx;
  for (const order of [
    [standby.port, deadPort, primary.port],
    [deadPort, primary.port, standby.port],
    [primary.port, standby.port],
  ]) {
    assert.is(await clientPort(url(order)), primary.port, `read-write, ports ${order.join(',')}`);
    assert.is(await clientPort(url(order, 'primary')), primary.port, `primary, ports ${order.join(',')}`);
  }
  assert.is(await clientPort(url([primary.port, deadPort, standby.port], 'standby')), standby.port);
  assert.is(await clientPort(url([primary.port, standby.port], 'prefer-standby')), standby.port);
  assert.is(await clientPort(url([deadPort, primary.port], 'prefer-standby')), primary.port);
  assert.is(await clientPort(url([deadPort, standby.port, primary.port], 'any')), standby.port);
  assert.is(await clientPort(url([standby.port, primary.port], 'read-only')), standby.port);

  // No writable server: one error naming each host's reason, no password.
  try {
    await connectPgClient({ connectionString: url([standby.port, deadPort]) });
    assert.unreachable('connected without a primary');
  } catch (error) {
    assert.instance(error, PgNoHostError);
    const message = (error as Error).message;
    assert.is((error as PgNoHostError).code, 'PG_NO_SUITABLE_HOST');
    assert.match(message, `127.0.0.1:${standby.port}: session is read-only`);
    assert.match(message, `127.0.0.1:${deadPort}: `);
    assert.not.match(message, 's3cret');
  }
});

multiHost(
  'the API, relay and applier run on a multi-host URL whose first hosts are a standby and a dead port',
  async (ctx) => {
    const brokers = process.env.KAFKA_BROKERS;
    if (!brokers) {
      console.log('multi-host: no KAFKA_BROKERS (run under walnut-stack run): skipping the runnables case');
      return;
    }
    const { primary, standby, deadPort } = ctx;
    const walnut = await walnutFixture('multi_host', { databaseUrl: primary.url, brokers: brokers.split(',') });
    try {
      const database = new URL(walnut.databaseUrl).pathname;
      // The fixture's processes read this env object: every runnable now gets the host list.
      walnut.env.DATABASE_URL = url([standby.port, deadPort, primary.port]).replace('/walnut?', `${database}?`);
      const relay = await walnut.startRelay();
      await walnut.startApplier();
      const { url: api } = await walnut.startApi();
      const id = await write(api, 'PUT', '/kv/multi-host', { value: { n: 1 } });
      await waitApplied(api, id);
      const read = await call(api, 'GET', '/kv/multi-host');
      assert.equal(read.body.value, { n: 1 }, JSON.stringify(read.body));
      assert.ok(!relay.output.some((line) => line.includes('s3cret')), 'the relay never logs the password');
    } finally {
      await walnut.close();
    }
  },
);

multiHost(
  'migrations and the pool go to the primary; after a failover the same pool finds the promoted one',
  async (ctx) => {
    const { primary, standby, deadPort } = ctx;
    const multi = url([standby.port, deadPort, primary.port]);
    await runMigrations(multi);
    const errors: Error[] = [];
    const pool = createPgPool({ connectionString: multi, max: 4, onError: (e) => errors.push(e) });
    try {
      assert.is(await serverPort(pool), primary.port);
      await pool.query('CREATE TABLE failover_probe (n int)');
      await pool.query('INSERT INTO failover_probe VALUES (1)');
      // Several idle connections to the primary, all of which the failover breaks.
      const held = await Promise.all([pool.connect(), pool.connect(), pool.connect()]);
      for (const client of held) client.release();
      await standby.waitCaughtUp();

      await primary.kill();
      await standby.promote();
      const promotedAt = Date.now();

      // Idle clients of the dead primary are dropped by the pool (their 'error'); new ones resolve again.
      const port = await waitFor(
        'the pool to reach the promoted server',
        async () => ((await serverPort(pool)) === standby.port ? standby.port : undefined),
        { timeoutMs: 30_000, intervalMs: 100 },
      );
      assert.is(port, standby.port);
      console.log(`multi-host: the pool reached the promoted server ${Date.now() - promotedAt} ms after promotion`);
      await pool.query('INSERT INTO failover_probe VALUES (2)');
      const rows = await pool.query<{ n: number }>('SELECT n FROM failover_probe ORDER BY n');
      assert.equal(
        rows.rows.map((r) => r.n),
        [1, 2],
      );
      // The relay opens a new connection per use: it goes to the promoted server too.
      assert.is(await clientPort(multi), standby.port);
      assert.is(await clientPort(url([primary.port, deadPort, standby.port], 'primary')), standby.port);
    } finally {
      await pool.end();
    }
  },
);

multiHost.run();
