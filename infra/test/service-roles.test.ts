/**
 * compose.yaml's relay and applier connect as walnut_relay and walnut_applier, which
 * `pnpm run migrate` makes (grantServiceRoles). On a real server: the roles are not
 * superusers and hold exactly SERVICE_GRANTS; and as those roles, a relay creates its
 * slot and streams, and an applier applies a write and sweeps what retention removes,
 * end to end through the API (which stays the tables' owner).
 */
import { randomUUID } from 'node:crypto';
import { grantServiceRoles, SERVICE_GRANTS } from '@walnut/schema';
import {
  call,
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

interface Context {
  walnut: WalnutFixture;
  roles: { relay: { name: string; url: string }; applier: { name: string; url: string } };
  started: WalnutProcess[];
}

const roles = suite<Context>('service roles made by migrate');

roles.before(async (ctx) => {
  ctx.walnut = await walnutFixture('service_roles', { relayRole: 'owner' });
  ctx.started = [];
  // Roles are per cluster: names of this run's own, so a shared server keeps none of ours.
  const suffix = randomUUID().slice(0, 8);
  const role = (name: string) => {
    const password = randomUUID();
    const url = new URL(ctx.walnut.databaseUrl);
    url.username = `${name}_${suffix}`;
    url.password = password;
    return { name: url.username, password, url: url.toString() };
  };
  const relay = role('walnut_relay');
  const applier = role('walnut_applier');
  const options = { relay, applier, publication: ctx.walnut.env.RELAY_PUBLICATION as string };
  const client = await ctx.walnut.pool.connect();
  try {
    // Twice: migrate runs it at every start of the stack.
    await grantServiceRoles(client, options);
    await grantServiceRoles(client, options);
  } finally {
    client.release();
  }
  ctx.roles = { relay, applier };
});

roles.after(async ({ walnut, roles: made, started }) => {
  await Promise.all((started ?? []).map((p) => p.stop('SIGKILL')));
  await walnut?.close();
  if (!made) return;
  const admin = new pg.Client({ connectionString: walnut.env.DATABASE_URL });
  await admin.connect();
  for (const { name } of Object.values(made)) {
    await admin.query(`DROP OWNED BY ${pg.escapeIdentifier(name)}; DROP ROLE ${pg.escapeIdentifier(name)}`);
  }
  await admin.end();
});

roles('neither role is a superuser, and each holds exactly its grants', async ({ walnut, roles: made }) => {
  for (const [service, { name }] of Object.entries(made)) {
    const { rows } = await walnut.pool.query(
      `SELECT rolsuper, rolcreaterole, rolcreatedb, rolbypassrls, rolreplication, rolcanlogin
         FROM pg_roles WHERE rolname = $1`,
      [name],
    );
    assert.equal(rows[0], {
      rolsuper: false,
      rolcreaterole: false,
      rolcreatedb: false,
      rolbypassrls: false,
      rolreplication: service === 'relay',
      rolcanlogin: true,
    });
    const grants = await walnut.pool.query<{ table_name: string; privileges: string[] }>(
      `SELECT table_name, array_agg(privilege_type::text ORDER BY privilege_type) AS privileges
         FROM information_schema.role_table_grants WHERE grantee = $1 GROUP BY table_name`,
      [name],
    );
    const held = Object.fromEntries(grants.rows.map((r) => [r.table_name, r.privileges]));
    assert.equal(held, SERVICE_GRANTS[service as keyof typeof SERVICE_GRANTS], `${service}'s table grants`);
  }
});

roles('as its role, the applier cannot write the outbox, nor the relay read kvs', async ({ walnut, roles: made }) => {
  const refused = async (url: string, sql: string) => {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      const error = await client.query(sql).then(
        () => undefined,
        (e: { code?: string }) => e,
      );
      assert.is(error?.code, '42501', `${sql} was allowed`);
    } finally {
      await client.end();
    }
  };
  await refused(
    made.applier.url,
    `INSERT INTO outbox (id, aggregatetype, aggregateid, type, payload) VALUES (gen_random_uuid(), 'kv', 'k', 'kv.set', '{}')`,
  );
  await refused(made.relay.url, 'SELECT * FROM kvs');
  await walnut.pool.query('SELECT 1');
});

roles('a write goes API → relay (walnut_relay) → applier (walnut_applier), and retention sweeps it', async (ctx) => {
  const { walnut, roles: made, started } = ctx;
  const relay = startWalnutProcess('relay', { ...walnut.env, DATABASE_URL: made.relay.url });
  started.push(relay);
  // The slot is created, the publication checked, and streaming begins, all as walnut_relay.
  await relay.waitForLine(/"state":"streaming"/);
  const applier = startWalnutProcess('applier', {
    ...walnut.env,
    DATABASE_URL: made.applier.url,
    APPLIER_OUTBOX_RETENTION_SECONDS: '0',
    APPLIER_IDEMPOTENCY_RETENTION_SECONDS: '0',
    APPLIER_REQUEST_RETENTION_SECONDS: '3600',
    APPLIER_RETENTION_INTERVAL_MS: '100',
  });
  started.push(applier);
  await applier.waitForLine(/applier consuming/);
  const { url: api } = await walnut.startApi();

  const requestId = await write(
    api,
    'PUT',
    '/kv/roles',
    { value: { by: 'walnut_applier' } },
    { 'Idempotency-Key': 'k1' },
  );
  await waitApplied(api, requestId);
  assert.equal((await call(api, 'GET', '/kv/roles')).body.value, { by: 'walnut_applier' });
  await waitFor(
    'retention to delete the applied outbox row and the idempotency record',
    async () => {
      // A missing grant shows as a failed sweep (permission denied), retried: the wait reports its line.
      const failed = applier.output.find((line) => line.includes('retention sweep failed'));
      if (failed) throw new Error(failed);
      const { rows } = await walnut.pool.query(
        'SELECT (SELECT count(*) FROM outbox)::int AS outbox, (SELECT count(*) FROM idempotency_keys)::int AS keys',
      );
      return rows[0].outbox === 0 && rows[0].keys === 0;
    },
    { timeoutMs: 30_000 },
  );
  assert.not.ok(
    applier.output.some((line) => line.includes('retention sweep failed')),
    applier.tail(),
  );
});

roles.run();
