import { migrateEnv, runMigrations } from './migrate.ts';

const env = migrateEnv.safeParse(process.env);
if (!env.success) {
  for (const issue of env.error.issues) console.error(`migrate: DATABASE_URL: ${issue.message}`);
  process.exit(2);
}
await runMigrations(env.data.DATABASE_URL);
console.error('migrate: database is up to date');
