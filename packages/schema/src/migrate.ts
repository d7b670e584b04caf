import { fileURLToPath } from 'node:url';
import { drizzle } from 'drizzle-orm/node-postgres';
import { migrate } from 'drizzle-orm/node-postgres/migrator';
import pg from 'pg';
import { z } from 'zod';
import { resolvePgUrl } from './pg-connect.ts';
import { pgUrlSetting } from './pg-hosts.ts';

/** The repo's drizzle-kit output, shared by every runnable. */
export const migrationsFolder = fileURLToPath(new URL('../../../drizzle', import.meta.url));

/** The migrate runnable's environment (`pnpm run migrate`), parsed once at start. */
export const migrateEnv = z.object({
  /** Postgres to migrate. */
  DATABASE_URL: pgUrlSetting,
});

export async function runMigrations(databaseUrl: string): Promise<void> {
  const client = new pg.Client({ connectionString: await resolvePgUrl(databaseUrl) });
  await client.connect();
  try {
    await migrate(drizzle(client), { migrationsFolder });
  } finally {
    await client.end();
  }
}
