import pg from 'pg';
import { migrateEnv, runMigrations } from './migrate.ts';
import { resolvePgUrl } from './pg-connect.ts';
import { APPLIER_ROLE, grantServiceRoles, RELAY_ROLE } from './service-roles.ts';

const env = migrateEnv.safeParse(process.env);
if (!env.success) {
  for (const issue of env.error.issues) console.error(`migrate: ${issue.path.join('.')}: ${issue.message}`);
  process.exit(2);
}
const { DATABASE_URL, RELAY_ROLE_PASSWORD, APPLIER_ROLE_PASSWORD, RELAY_PUBLICATION } = env.data;
await runMigrations(DATABASE_URL);
console.error('migrate: database is up to date');
if (RELAY_ROLE_PASSWORD && APPLIER_ROLE_PASSWORD) {
  const client = new pg.Client({ connectionString: await resolvePgUrl(DATABASE_URL) });
  await client.connect();
  try {
    await grantServiceRoles(client, {
      relay: { name: RELAY_ROLE, password: RELAY_ROLE_PASSWORD },
      applier: { name: APPLIER_ROLE, password: APPLIER_ROLE_PASSWORD },
      publication: RELAY_PUBLICATION,
    });
  } finally {
    await client.end();
  }
  console.error(`migrate: roles ${RELAY_ROLE} and ${APPLIER_ROLE} and publication ${RELAY_PUBLICATION} are in place`);
}
