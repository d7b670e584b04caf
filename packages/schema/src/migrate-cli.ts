import { migrateEnv, runMigrations } from './migrate.ts';

const env = migrateEnv.safeParse(process.env);
if (!env.success) {
  console.error('migrate: DATABASE_URL is not set');
  process.exit(2);
}
await runMigrations(env.data.DATABASE_URL);
console.error('migrate: database is up to date');
