import pg from 'pg';
import { type PgHost, type PgHostsUrl, parsePgUrl, type TargetSessionAttrs } from './pg-hosts.ts';

/** libpq has no default per-host timeout; one dead host must not hold a failover up for a TCP timeout. */
export const defaultHostTimeoutMs = 5_000;

/**
 * No host of a multi-host URL gave a session of the wanted kind. `code` is
 * the SQLSTATE of the first server that refused us (28P01 for a bad
 * password, say), so callers classify it as they would a one-host failure;
 * `PG_NO_SUITABLE_HOST` when no server refused (all down, or all standbys).
 */
export class PgNoHostError extends Error {
  override name = 'PgNoHostError';
  readonly code: string;
  readonly retryable = true;
  constructor(message: string, code: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

/**
 * The one-host connection string to use now for `url`: libpq's choice among
 * a multi-host URL's hosts, tried in order, each on a short probe connection
 * (connect_timeout, else 5 s) that checks the session against
 * target_session_attrs. A one-host URL with no target_session_attrs comes
 * back untouched and costs nothing.
 *
 * Callers resolve on every new connection, never once at start: after a
 * failover the promoted server is the one found.
 */
export async function resolvePgUrl(url: string | PgHostsUrl, opts: { hostTimeoutMs?: number } = {}): Promise<string> {
  return (await resolvePgHost(typeof url === 'string' ? parsePgUrl(url) : url, opts)).url;
}

async function resolvePgHost(
  parsed: PgHostsUrl,
  opts: { hostTimeoutMs?: number },
): Promise<{ host: PgHost; url: string }> {
  const first = parsed.hosts[0] ?? { host: '', port: 5432 };
  if (parsed.single) return { host: first, url: parsed.urlFor(first) };
  const timeoutMs =
    opts.hostTimeoutMs ?? (parsed.connectTimeoutS ? parsed.connectTimeoutS * 1_000 : defaultHostTimeoutMs);
  const hosts = parsed.loadBalance ? shuffled(parsed.hosts) : parsed.hosts;
  // prefer-standby: any standby first; failing that, whatever answers (libpq's second pass).
  const passes: TargetSessionAttrs[] =
    parsed.targetSessionAttrs === 'prefer-standby' ? ['standby', 'any'] : [parsed.targetSessionAttrs];
  const failures: string[] = [];
  let refusal: unknown;
  for (const want of passes) {
    for (const host of hosts) {
      const hostUrl = parsed.urlFor(host);
      try {
        const found = await probe(hostUrl, want, timeoutMs);
        if (found === true) return { host, url: hostUrl };
        failures.push(`${label(host)}: ${found}`);
      } catch (error) {
        if (refusal === undefined && sqlState(error)) refusal = error;
        failures.push(`${label(host)}: ${(error as Error).message || String(error)}`);
      }
    }
  }
  throw new PgNoHostError(
    `no server in ${parsed.redacted} is ${parsed.targetSessionAttrs} (${failures.join('; ')})`,
    sqlState(refusal) ?? 'PG_NO_SUITABLE_HOST',
    { cause: refusal },
  );
}

/** true, or why this server's session is not the kind wanted. */
async function probe(hostUrl: string, want: TargetSessionAttrs, timeoutMs: number): Promise<true | string> {
  const client = new pg.Client({ connectionString: hostUrl, connectionTimeoutMillis: timeoutMs });
  client.on('error', () => {});
  try {
    await client.connect();
    if (want === 'any') return true;
    // libpq asks the same: transaction_read_only for read-write/read-only, pg_is_in_recovery() for primary/standby.
    const r = await client.query<{ recovery: boolean; read_only: string }>({
      text: "SELECT pg_is_in_recovery() AS recovery, current_setting('transaction_read_only') AS read_only",
      query_timeout: timeoutMs,
    } as pg.QueryConfig);
    const row = r.rows[0];
    if (!row) return 'no answer to the session check';
    switch (want) {
      case 'read-write':
        return row.read_only === 'off' ? true : 'session is read-only';
      case 'read-only':
        return row.read_only === 'on' ? true : 'session is read-write';
      case 'primary':
        return row.recovery ? 'server is in recovery (a standby)' : true;
      case 'standby':
        return row.recovery ? true : 'server is not in recovery (a primary)';
      case 'prefer-standby':
        return true;
    }
  } finally {
    await client.end().catch(() => {});
  }
}

/**
 * A pg.Client that resolves a multi-host URL when it connects: pass it as
 * pg.Pool's `Client`, so every new pooled connection goes to whichever host
 * is right at that moment. The pool is built with the URL of the first host
 * (node-postgres cannot parse the list); connect() moves this client to the
 * host resolvePgUrl picks. Every host of one URL shares user, password,
 * database and TLS settings, so only host and port change.
 */
export function multiHostClient(parsed: PgHostsUrl, opts: { hostTimeoutMs?: number } = {}): typeof pg.Client {
  return class MultiHostClient extends pg.Client {
    override connect(): Promise<pg.Client>;
    override connect(callback: ((err: Error) => void) | ((err: null, c: pg.Client) => void)): void;
    override connect(
      callback?: ((err: Error) => void) | ((err: null, c: pg.Client) => void),
    ): Promise<pg.Client> | undefined {
      const connected = resolvePgHost(parsed, opts).then(({ host }) => {
        // The fields pg.Client's _connect reads for the socket; the startup packet's user/database are shared.
        const self = this as unknown as {
          host: string;
          port: number;
          connectionParameters: { host: string; port: number };
          connection: { stream: { destroyed: boolean } };
        };
        // pg.Pool's connectionTimeoutMillis destroys the socket when the search overran it: give up, as it expects.
        if (self.connection.stream.destroyed) throw new Error('Connection terminated: timed out finding a host');
        self.host = host.host || 'localhost';
        self.port = host.port;
        self.connectionParameters.host = self.host;
        self.connectionParameters.port = host.port;
        return super.connect();
      });
      if (!callback) return connected;
      connected.then(
        (client) => (callback as (err: null, c: pg.Client) => void)(null, client),
        (error: Error) => (callback as (err: Error) => void)(error),
      );
      return undefined;
    }
  };
}

function label(host: PgHost): string {
  return host.host.includes(':') ? `[${host.host}]:${host.port}` : `${host.host || 'localhost'}:${host.port}`;
}

function sqlState(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null | undefined)?.code;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
}

function shuffled<T>(items: readonly T[]): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  return out;
}
