import { customType } from 'drizzle-orm/pg-core';

/** Postgres' native `pg_lsn`: compares as a WAL position, prints as "16/B374D848". */
export const pgLsn = customType<{ data: string; driverData: string }>({
  dataType: () => 'pg_lsn',
});
