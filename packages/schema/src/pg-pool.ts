import pg from 'pg';

/**
 * A pool that survives a Postgres restart. node-postgres emits 'error' on a
 * client that is checked out when the server terminates it (57P01 during a
 * fast shutdown); with no listener that event kills the process. The query in
 * flight still rejects, and the pool drops the broken client on release.
 */
export function createPgPool(opts: {
  connectionString: string;
  max: number;
  onError: (error: Error) => void;
}): pg.Pool {
  const pool = new pg.Pool({ connectionString: opts.connectionString, max: opts.max });
  pool.on('error', opts.onError);
  pool.on('connect', (client) => client.on('error', opts.onError));
  return pool;
}
