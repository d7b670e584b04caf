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
  idleTimeoutMillis?: number;
  connectionTimeoutMillis?: number;
  onError: (error: Error) => void;
}): pg.Pool {
  const { onError, ...config } = opts;
  const pool = new pg.Pool(config);
  pool.on('error', onError);
  pool.on('connect', (client) => client.on('error', onError));
  return pool;
}
