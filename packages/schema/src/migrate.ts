import { fileURLToPath } from 'node:url';
import { drizzle } from 'drizzle-orm/node-postgres';
import { migrate } from 'drizzle-orm/node-postgres/migrator';
import pg from 'pg';
import * as z from 'zod';
import { resolvePgUrl } from './pg-connect.ts';
import { pgUrlSetting } from './pg-hosts.ts';

/** The repo's drizzle-kit output, shared by every runnable. */
export const migrationsFolder = fileURLToPath(new URL('../../../drizzle', import.meta.url));

/** The migrate runnable's environment (`pnpm run migrate`), parsed once at start. */
export const migrateEnv = z
  .object({
    /** Postgres to migrate, as the owner of its tables. */
    DATABASE_URL: pgUrlSetting,
    /** With APPLIER_ROLE_PASSWORD: make walnut_relay and walnut_applier after migrating (service-roles.ts). */
    RELAY_ROLE_PASSWORD: z.string().min(1).optional().describe("walnut_relay's password; unset: no service roles"),
    APPLIER_ROLE_PASSWORD: z.string().min(1).optional().describe("walnut_applier's password; unset: no service roles"),
    /** The publication made for walnut_relay, which may not make it itself; `walnut_outbox` by default. */
    RELAY_PUBLICATION: z
      .string()
      .regex(/^[a-z_][a-z0-9_]*$/, 'must be a lower-case identifier')
      .default('walnut_outbox')
      .describe("the relay's publication (its RELAY_PUBLICATION), made with the service roles"),
  })
  .refine((env) => (env.RELAY_ROLE_PASSWORD === undefined) === (env.APPLIER_ROLE_PASSWORD === undefined), {
    message: 'set RELAY_ROLE_PASSWORD and APPLIER_ROLE_PASSWORD together, or neither',
    path: ['APPLIER_ROLE_PASSWORD'],
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
