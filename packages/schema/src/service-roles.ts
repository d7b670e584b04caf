import pg from 'pg';

/** The roles compose.yaml's relay and applier connect as (made by `pnpm run migrate`). */
export const RELAY_ROLE = 'walnut_relay';
export const APPLIER_ROLE = 'walnut_applier';

export interface ServiceRolesOptions {
  relay: { name: string; password: string };
  applier: { name: string; password: string };
  /** The relay's publication (RELAY_PUBLICATION), made here by the outbox's owner. */
  publication: string;
}

/**
 * What each role may do, and nothing more. The relay: stream a slot (REPLICATION)
 * and read the outbox, which pgoutput checks (docs/relay.md, Least privilege). The
 * applier: walnut.apply_kv_batch's upsert into kvs and marking of requests (FOR UPDATE
 * needs UPDATE), and the retention sweep's deletes (docs: packages/applier/src/retention.ts).
 * A new table either needs must add its grant here.
 */
export const SERVICE_GRANTS = {
  relay: { outbox: ['SELECT'] },
  applier: {
    kvs: ['INSERT', 'SELECT', 'UPDATE'],
    requests: ['DELETE', 'SELECT', 'UPDATE'],
    outbox: ['DELETE', 'SELECT', 'UPDATE'],
    idempotency_keys: ['DELETE', 'SELECT', 'UPDATE'],
  },
} as const satisfies Record<'relay' | 'applier', Record<string, readonly string[]>>;

/**
 * Creates (or updates the password of) the relay's and the applier's roles, grants
 * them what SERVICE_GRANTS lists, and creates the relay's publication when missing,
 * so the relay never needs to own the outbox. Idempotent: run after every migration,
 * as the owner of the tables (compose's `migrate`, as the superuser).
 */
export async function grantServiceRoles(client: pg.ClientBase, opts: ServiceRolesOptions): Promise<void> {
  const relay = pg.escapeIdentifier(opts.relay.name);
  const applier = pg.escapeIdentifier(opts.applier.name);
  await ensureRole(client, opts.relay.name, opts.relay.password, 'REPLICATION');
  await ensureRole(client, opts.applier.name, opts.applier.password, 'NOREPLICATION');
  const grants = [
    `GRANT USAGE ON SCHEMA public TO ${relay}, ${applier}`,
    // apply_kv_batch and xid8_of are SECURITY INVOKER: they run with the applier's grants.
    `GRANT USAGE ON SCHEMA walnut TO ${applier}`,
    `GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA walnut TO ${applier}`,
    ...tableGrants(SERVICE_GRANTS.relay, relay),
    ...tableGrants(SERVICE_GRANTS.applier, applier),
  ];
  for (const sql of grants) await client.query(sql);
  const publication = await client.query('SELECT 1 FROM pg_publication WHERE pubname = $1', [opts.publication]);
  if (!publication.rowCount) {
    await client.query(
      `CREATE PUBLICATION ${pg.escapeIdentifier(opts.publication)} FOR TABLE public.outbox WITH (publish = 'insert')`,
    );
  }
}

function tableGrants(grants: Record<string, readonly string[]>, role: string): string[] {
  return Object.entries(grants).map(
    ([table, privileges]) => `GRANT ${privileges.join(', ')} ON public.${pg.escapeIdentifier(table)} TO ${role}`,
  );
}

/** The role with LOGIN and the password; never a superuser, nor able to make roles or databases. */
async function ensureRole(
  client: pg.ClientBase,
  name: string,
  password: string,
  replication: 'REPLICATION' | 'NOREPLICATION',
): Promise<void> {
  const exists = await client.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [name]);
  const verb = exists.rowCount ? 'ALTER' : 'CREATE';
  await client.query(
    `${verb} ROLE ${pg.escapeIdentifier(name)} LOGIN ${replication} NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS PASSWORD ${pg.escapeLiteral(password)}`,
  );
}
