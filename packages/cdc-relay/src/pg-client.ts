import { resolvePgUrl } from '@walnut/schema';
import pg from 'pg';

/**
 * A connected client. Its 'error' events are swallowed: an unreachable server
 * or a dropped connection must surface as a rejected connect() or query, not
 * as an uncaught 'error' that ends the process. A failed connect ends it.
 *
 * A multi-host connectionString is resolved first (pg-connect.ts in
 * @walnut/schema): the client goes to the host target_session_attrs picks now.
 */
export async function connectPgClient(config: pg.ClientConfig): Promise<pg.Client> {
  const connectionString = config.connectionString && (await resolvePgUrl(config.connectionString));
  const client = new pg.Client(connectionString ? { ...config, connectionString } : config);
  client.on('error', () => {});
  try {
    await client.connect();
  } catch (error) {
    await client.end().catch(() => {});
    throw error;
  }
  return client;
}

/** Runs `fn` on a connection of its own, closed afterwards whatever happens. */
export async function withPgClient<T>(databaseUrl: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = await connectPgClient({ connectionString: databaseUrl });
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => {});
  }
}
