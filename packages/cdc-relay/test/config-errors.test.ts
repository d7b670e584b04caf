/**
 * Problems only a human can fix end the relay: it exits non-zero within a
 * deadline and prints one fatal line naming the problem and the fix, instead
 * of retrying forever.
 */

import { startWalnutProcess, type WalnutFixture, type WalnutProcess, waitFor, walnutFixture } from '@walnut/stack';
import pg from 'pg';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';

/** The machine's own Postgres, left at wal_level=replica. Only read here. */
const SYSTEM_POSTGRES_URL = 'postgres://postgres@127.0.0.1:5432/postgres';
const EXIT_DEADLINE_MS = 30_000;

interface Ctx {
  walnut: WalnutFixture;
  started: WalnutProcess[];
  roles: string[];
}

const errors = suite<Ctx>('relay configuration errors');

errors.before(async (ctx) => {
  ctx.walnut = await walnutFixture('config_errors');
  ctx.started = [];
  ctx.roles = [];
});

errors.after(async ({ walnut, started, roles }) => {
  await Promise.all(started.map((p) => p.stop('SIGKILL')));
  for (const role of roles) await walnut.pool.query(`DROP ROLE IF EXISTS ${pg.escapeIdentifier(role)}`);
  await walnut.close();
});

interface FatalLine {
  code: string;
  msg: string;
}

/**
 * Starts a relay expected to give up, waits for its exit and its output to
 * drain, and returns the exit code with the one fatal line it printed.
 */
async function runToFailure(
  ctx: Ctx,
  env: Record<string, string>,
): Promise<{ exitCode: number | null; fatal: FatalLine; elapsedMs: number; relay: WalnutProcess }> {
  const startedAt = performance.now();
  const relay = startWalnutProcess('relay', { ...ctx.walnut.env, ...env });
  ctx.started.push(relay);
  await waitFor(
    'the relay to exit',
    async () => !relay.running && relay.child.stdout?.closed !== false && relay.child.stderr?.closed !== false,
    { timeoutMs: EXIT_DEADLINE_MS },
  ).catch((error: Error) => {
    throw new Error(`${error.message}; relay output:\n${relay.tail(10)}`);
  });
  const elapsedMs = performance.now() - startedAt;
  const fatal = relay.output.filter((line) => line.includes('"level":60'));
  assert.is(fatal.length, 1, `one fatal line, got:\n${relay.tail(10)}`);
  const parsed = JSON.parse(fatal[0] as string) as FatalLine;
  console.log(`  config errors: exit ${relay.child.exitCode} after ${(elapsedMs / 1000).toFixed(1)}s: ${parsed.msg}`);
  return { exitCode: relay.child.exitCode, fatal: parsed, elapsedMs, relay };
}

function assertFailed(exitCode: number | null): void {
  assert.ok(exitCode !== null && exitCode !== 0, `exit code ${exitCode} is non-zero`);
}

function withUser(url: string, user: string): string {
  const u = new URL(url);
  u.username = user;
  u.password = '';
  return u.toString();
}

errors('a role that may not log in: AUTH_FAILED', async (ctx) => {
  // The private cluster trusts every connection on 127.0.0.1 (initdb --auth=trust),
  // so a wrong password cannot fail there. What does fail, with SQLSTATE 28000 as a
  // refused password would with 28P01, is a role without LOGIN and a role that
  // does not exist: Postgres checks both before any authentication method.
  const nologin = `walnut_nologin_${ctx.walnut.slot.slice(-8)}`;
  await ctx.walnut.pool.query(`CREATE ROLE ${pg.escapeIdentifier(nologin)} NOLOGIN REPLICATION`);
  ctx.roles.push(nologin);
  const cases = [
    { user: nologin, says: /not permitted to log in/ },
    { user: `${nologin}_missing`, says: /does not exist/ },
  ];
  for (const { user, says } of cases) {
    const { exitCode, fatal } = await runToFailure(ctx, { DATABASE_URL: withUser(ctx.walnut.databaseUrl, user) });
    assertFailed(exitCode);
    assert.is(fatal.code, 'AUTH_FAILED');
    assert.match(fatal.msg, says);
    assert.match(fatal.msg, user, 'names the role');
    assert.match(fatal.msg, /DATABASE_URL/, 'says where to fix it');
    assert.match(fatal.msg, /LOGIN and REPLICATION/, 'says what the role needs');
  }
});

errors('a least-privilege role and no publication: CONFIG_INVALID with the SQL its owner must run', async (ctx) => {
  const role = `walnut_lp_${ctx.walnut.slot.slice(-8)}`;
  const publication = `walnut_unmade_${ctx.walnut.slot.slice(-8)}`;
  await ctx.walnut.pool.query(
    `CREATE ROLE ${pg.escapeIdentifier(role)} LOGIN REPLICATION; GRANT SELECT ON public.outbox TO ${pg.escapeIdentifier(role)}`,
  );
  ctx.roles.push(role);
  const { exitCode, fatal } = await runToFailure(ctx, {
    DATABASE_URL: withUser(ctx.walnut.databaseUrl, role),
    RELAY_PUBLICATION: publication,
  });
  await ctx.walnut.pool.query(`REVOKE ALL ON public.outbox FROM ${pg.escapeIdentifier(role)}`);
  assertFailed(exitCode);
  assert.is(fatal.code, 'CONFIG_INVALID');
  assert.match(fatal.msg, `CREATE PUBLICATION "${publication}" FOR TABLE "public"."outbox" WITH (publish = 'insert')`);
  assert.match(fatal.msg, /owner/);
  const made = await ctx.walnut.pool.query('SELECT 1 FROM pg_publication WHERE pubname = $1', [publication]);
  assert.is(made.rowCount, 0, 'no publication was created');
});

errors('a server without wal_level=logical: WAL_LEVEL_NOT_LOGICAL, and nothing created', async (ctx) => {
  const probe = new pg.Client({ connectionString: SYSTEM_POSTGRES_URL, connectionTimeoutMillis: 3_000 });
  probe.on('error', () => {});
  const reachable = await probe.connect().then(
    () => null,
    (error: Error) => error.message,
  );
  if (reachable !== null) {
    console.log(`  config errors: SKIPPED wal_level case: ${SYSTEM_POSTGRES_URL} is not reachable (${reachable})`);
    return;
  }
  try {
    const snapshot = async () => {
      const r = await probe.query<{ wal_level: string; slots: string; publications: string }>(
        `SELECT current_setting('wal_level') AS wal_level,
                (SELECT count(*) FROM pg_replication_slots)::text AS slots,
                (SELECT count(*) FROM pg_publication)::text AS publications`,
      );
      return r.rows[0];
    };
    const before = await snapshot();
    if (before?.wal_level === 'logical') {
      console.log(`  config errors: SKIPPED wal_level case: ${SYSTEM_POSTGRES_URL} has wal_level=logical`);
      return;
    }
    const { exitCode, fatal } = await runToFailure(ctx, { DATABASE_URL: SYSTEM_POSTGRES_URL });
    assertFailed(exitCode);
    assert.is(fatal.code, 'WAL_LEVEL_NOT_LOGICAL');
    assert.match(fatal.msg, `wal_level=${before?.wal_level}`);
    assert.match(fatal.msg, /set wal_level=logical/);
    assert.equal(await snapshot(), before, 'no slot or publication was created');
  } finally {
    await probe.end();
  }
});

errors('not a standby, a held slot: SLOT_IN_USE after RELAY_SLOT_BUSY_TIMEOUT_MS', async (ctx) => {
  const busyTimeoutMs = 3_000;
  const first = await ctx.walnut.startRelay();
  const holder = await ctx.walnut.pool.query<{ pid: number }>(
    'SELECT active_pid AS pid FROM pg_replication_slots WHERE slot_name = $1 AND active',
    [ctx.walnut.slot],
  );
  const pid = holder.rows[0]?.pid;
  assert.ok(pid, 'the first relay holds the slot');

  const { exitCode, fatal, elapsedMs, relay } = await runToFailure(ctx, {
    RELAY_STANDBY: 'false',
    RELAY_SLOT_BUSY_TIMEOUT_MS: String(busyTimeoutMs),
  });
  assertFailed(exitCode);
  assert.is(fatal.code, 'SLOT_IN_USE');
  assert.match(fatal.msg, /another process still holds replication slot/);
  assert.match(fatal.msg, `pid ${pid}`, 'names the holder');
  assert.match(fatal.msg, /RELAY_SLOT/, 'says how to resolve it');
  assert.ok(elapsedMs >= busyTimeoutMs, `it retried for the busy timeout first (${Math.round(elapsedMs)} ms)`);
  assert.ok(
    relay.output.some((line) => line.includes('"state":"backoff"') && line.includes('SLOT_IN_USE')),
    'it backed off on SLOT_IN_USE before giving up',
  );

  // The holder was not disturbed.
  assert.ok(first.running, 'the first relay still runs');
  const after = await ctx.walnut.pool.query<{ pid: number }>(
    'SELECT active_pid AS pid FROM pg_replication_slots WHERE slot_name = $1',
    [ctx.walnut.slot],
  );
  assert.is(after.rows[0]?.pid, pid, 'the first relay still holds the slot');
  assert.is(await first.stop('SIGTERM'), 0);
});

errors('RELAY_SINK=nats with a bad setting: one line naming it, exit 2, before anything connects', async (ctx) => {
  const nats = { RELAY_SINK: 'nats', NATS_SERVERS: '127.0.0.1:4222' };
  const cases: Array<[Record<string, string>, RegExp]> = [
    [{ NATS_SERVERS: 'http://127.0.0.1:4222' }, /^walnut-relay: --nats-servers \/ NATS_SERVERS: must be host:port/],
    [
      { RELAY_NATS_STREAM: 'walnut.outbox' },
      /^walnut-relay: --nats-stream \/ RELAY_NATS_STREAM: must be a JetStream stream name/,
    ],
    [
      { RELAY_NATS_SUBJECTS: 'outbox..event' },
      /^walnut-relay: --nats-subjects \/ RELAY_NATS_SUBJECTS: must be NATS subjects/,
    ],
    [{ RELAY_NATS_STORAGE: 'disk' }, /^walnut-relay: --nats-storage \/ RELAY_NATS_STORAGE: /],
    [{ RELAY_NATS_REPLICAS: '7' }, /^walnut-relay: --nats-replicas \/ RELAY_NATS_REPLICAS: /],
    [
      { RELAY_NATS_DUPLICATE_WINDOW_MS: '10' },
      /^walnut-relay: --nats-duplicate-window-ms \/ RELAY_NATS_DUPLICATE_WINDOW_MS: /,
    ],
    [{ NATS_USER: 'relay' }, /^walnut-relay: NATS_USER and NATS_PASSWORD: set both, or neither/],
    [{ NATS_TOKEN: 't', NATS_USER: 'u', NATS_PASSWORD: 'p' }, /^walnut-relay: NATS credentials: set one of/],
    [
      { NATS_CREDS_FILE: '/nonexistent/relay.creds' },
      /^walnut-relay: --nats-creds-file \/ NATS_CREDS_FILE: cannot read/,
    ],
    [
      { RELAY_DELIVERY: 'exactly-once' },
      /^walnut-relay: --delivery \/ RELAY_DELIVERY: exactly-once is for RELAY_SINK=kafka; with nats/,
    ],
  ];
  for (const [env, says] of cases) {
    const relay = startWalnutProcess('relay', { ...ctx.walnut.env, ...nats, ...env });
    ctx.started.push(relay);
    await waitFor('the relay to exit', async () => !relay.running && relay.child.stderr?.closed !== false, {
      timeoutMs: EXIT_DEADLINE_MS,
    });
    const lines = relay.output.filter((line) => line.startsWith('walnut-relay: '));
    assert.is(relay.child.exitCode, 2, `${JSON.stringify(env)}: exit 2:\n${relay.tail(5)}`);
    assert.is(lines.length, 1, `${JSON.stringify(env)}: one line:\n${relay.tail(5)}`);
    assert.match(lines[0] as string, says);
  }
  console.log(`  config errors: ${cases.length} bad NATS settings, each one line and exit 2`);
});

errors.run();
