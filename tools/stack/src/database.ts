import pg from 'pg';
import { StackError } from './errors.ts';

/**
 * Creates database `name` on the server of `adminUrl` unless it exists, and
 * returns its URL (same server and credentials, other path). Safe to race:
 * a concurrent creator winning is not an error.
 */
export async function createDatabase(adminUrl: string, name: string): Promise<string> {
  const client = new pg.Client({ connectionString: adminUrl });
  try {
    await client.connect();
    const exists = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (exists.rowCount === 0) await client.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`);
  } catch (error) {
    // 42P04 duplicate_database, or 23505 when two CREATE DATABASE race on pg_database's unique index.
    const code = (error as { code?: string }).code;
    if (code !== '42P04' && code !== '23505') {
      throw new StackError(
        'POSTGRES_FAILED',
        `could not create database ${name} on ${redact(adminUrl)}: ${(error as Error).message}`,
        { cause: error, retryable: true },
      );
    }
  } finally {
    await client.end().catch(() => {});
  }
  const url = new URL(adminUrl);
  url.pathname = `/${encodeURIComponent(name)}`;
  return url.toString();
}

/** The URL without its password, for messages. */
export function redact(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '(unparsable URL)';
  }
}
