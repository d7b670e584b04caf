import pg from 'pg';
import { multiHostClient } from './pg-connect.ts';
import { parsePgUrl } from './pg-hosts.ts';

/**
 * A pool that survives a Postgres restart and, with a multi-host URL, a
 * failover. node-postgres emits 'error' on a client that is checked out when
 * the server terminates it (57P01 during a fast shutdown); with no listener
 * that event kills the process. The query in flight still rejects, and the
 * pool drops the broken client on release; an idle client that breaks is
 * dropped at once (pg-pool's idle listener).
 *
 * A multi-host URL (`postgres://h1,h2/db?target_session_attrs=read-write`)
 * gets a Client that resolves the hosts on every new connection, so once the
 * old primary's connections have broken, new ones go to the promoted server.
 */
export function createPgPool(opts: {
  connectionString: string;
  max: number;
  idleTimeoutMillis?: number;
  connectionTimeoutMillis?: number;
  onError: (error: Error) => void;
}): pg.Pool {
  const { onError, ...config } = opts;
  const parsed = parsePgUrl(config.connectionString);
  const first = parsed.hosts[0];
  const pool =
    parsed.single || !first
      ? new pg.Pool(config)
      : new pg.Pool({ ...config, connectionString: parsed.urlFor(first), Client: multiHostClient(parsed) });
  pool.on('error', onError);
  pool.on('connect', (client) => client.on('error', onError));
  return pool;
}
