import * as z from 'zod';

/**
 * libpq's multi-host connection URI, which node-postgres does not parse (and
 * WHATWG URL rejects):
 *
 *   postgres://user:pw@h1:5432,[::1]:5433,h3/db?target_session_attrs=read-write&sslmode=require
 *
 * Semantics follow libpq (https://www.postgresql.org/docs/current/libpq-connect.html#LIBPQ-MULTIPLE-HOSTS):
 * - hosts are tried in the order written; each `host[:port]`, IPv6 in
 *   brackets, port 5432 when omitted;
 * - `host=` / `port=` query parameters, comma lists, override the URI's
 *   hosts; `port=` holds one port for every host or exactly one per host;
 * - `target_session_attrs` picks which server is accepted (any, read-write,
 *   read-only, primary, standby, prefer-standby); `load_balance_hosts=random`
 *   shuffles the hosts;
 * - every other parameter (sslmode, application_name, …) is kept in each
 *   host's own URL, where node-postgres reads it as it always has.
 *
 * Pure: no I/O. pg-connect.ts tries the hosts.
 */

export const targetSessionAttrs = ['any', 'read-write', 'read-only', 'primary', 'standby', 'prefer-standby'] as const;
export type TargetSessionAttrs = (typeof targetSessionAttrs)[number];

export interface PgHost {
  /** A hostname, an IP (IPv6 without brackets) or a Unix socket directory (starts with `/`). */
  host: string;
  port: number;
}

export interface PgHostsUrl {
  hosts: PgHost[];
  targetSessionAttrs: TargetSessionAttrs;
  loadBalance: boolean;
  /** Seconds from `connect_timeout` (libpq's per-host timeout), when given. */
  connectTimeoutS?: number;
  /**
   * The URL to hand to node-postgres for `hosts[i]`: the same user,
   * password, database and parameters, one host, no target_session_attrs.
   * Only `single` URLs are the caller's string untouched.
   */
  urlFor(host: PgHost): string;
  /** One host and nothing to check: use the original string as is. */
  single: boolean;
  /** The original string, password replaced by `***`, for logs and errors. */
  redacted: string;
}

export class PgUrlError extends Error {
  override name = 'PgUrlError';
}

const defaultPort = 5432;
/** Parameters that select hosts or sessions: consumed here, never passed to node-postgres. */
const hostParams = new Set(['host', 'port', 'target_session_attrs', 'load_balance_hosts', 'hostaddr']);

export function parsePgUrl(url: string): PgHostsUrl {
  const scheme = /^(postgres(?:ql)?):\/\//i.exec(url);
  if (!scheme) throw new PgUrlError('must start with postgres:// or postgresql://');
  const rest = url.slice(scheme[0].length);
  const authorityEnd = rest.search(/[/?]/);
  const authority = authorityEnd === -1 ? rest : rest.slice(0, authorityEnd);
  const tail = authorityEnd === -1 ? '' : rest.slice(authorityEnd);
  const at = authority.lastIndexOf('@');
  const userinfo = at === -1 ? '' : authority.slice(0, at);
  const hostlist = at === -1 ? authority : authority.slice(at + 1);
  const queryStart = tail.indexOf('?');
  const pathPart = queryStart === -1 ? tail : tail.slice(0, queryStart);
  const query = queryStart === -1 ? '' : tail.slice(queryStart + 1);
  const redacted = `${scheme[0]}${redactUserinfo(userinfo)}${at === -1 ? '' : '@'}${hostlist}${tail}`;

  const params: [string, string][] = [];
  for (const pair of query.split('&')) {
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    if (eq === -1) throw new PgUrlError(`query parameter "${safeDecode(pair)}" has no value: want name=value`);
    params.push([safeDecode(pair.slice(0, eq)), safeDecode(pair.slice(eq + 1))]);
  }
  // libpq: a parameter given twice keeps its last value.
  const param = (name: string) => params.findLast(([k]) => k === name)?.[1];

  let hosts = hostlist === '' ? [] : hostlist.split(',').map((entry, i) => parseHostPort(entry, i + 1));
  const hostParam = param('host');
  const portParam = param('port');
  if (param('hostaddr') !== undefined) throw new PgUrlError('hostaddr is not supported: name the hosts in host');
  if (hostParam !== undefined) hosts = hostParam.split(',').map((host) => ({ host: host.trim(), port: undefined }));
  if (hosts.some((h) => h.host === '') && hosts.length > 1) {
    throw new PgUrlError('an empty host in a list of several: name every host');
  }
  if (portParam !== undefined) {
    const ports = portParam.split(',').map((p, i) => parsePort(p.trim(), `port #${i + 1} of port=`));
    const count = Math.max(hosts.length, 1);
    if (ports.length !== 1 && ports.length !== count) {
      throw new PgUrlError(`could not match ${ports.length} port numbers to ${count} hosts`);
    }
    if (hosts.length === 0) hosts = [{ host: '', port: undefined }];
    hosts = hosts.map((h, i) => ({ host: h.host, port: ports[ports.length === 1 ? 0 : i] }));
  }

  const tsa = param('target_session_attrs') ?? 'any';
  if (!(targetSessionAttrs as readonly string[]).includes(tsa)) {
    throw new PgUrlError(`target_session_attrs=${tsa}: want one of ${targetSessionAttrs.join(', ')}`);
  }
  const balance = param('load_balance_hosts') ?? 'disable';
  if (balance !== 'disable' && balance !== 'random') {
    throw new PgUrlError(`load_balance_hosts=${balance}: want disable or random`);
  }
  const timeout = param('connect_timeout');
  let connectTimeoutS: number | undefined;
  if (timeout !== undefined) {
    connectTimeoutS = Number(timeout);
    if (!Number.isInteger(connectTimeoutS) || connectTimeoutS < 0) {
      throw new PgUrlError(`connect_timeout=${timeout}: want whole seconds`);
    }
  }

  const resolved: PgHost[] = hosts.map((h) => ({ host: h.host, port: h.port ?? defaultPort }));
  // node-postgres reads one host (from the URI or host=) and one port itself, as it always has.
  const single = resolved.length <= 1 && tsa === 'any';
  const kept = query.split('&').filter((pair) => pair !== '' && !hostParams.has(safeDecode(pair.split('=')[0] ?? '')));
  const userPart = at === -1 ? '' : `${userinfo}@`;
  const urlFor = (h: PgHost): string => {
    if (single) return url;
    // A socket directory cannot be a URI host: node-postgres takes it from ?host=.
    const socket = h.host.startsWith('/') || h.host === '';
    const netloc = socket ? '' : `${h.host.includes(':') ? `[${h.host}]` : h.host}:${h.port}`;
    const extra = socket ? [...(h.host ? [`host=${encodeURIComponent(h.host)}`] : []), `port=${h.port}`] : [];
    const q = [...extra, ...kept];
    return `${scheme[0]}${userPart}${netloc}${pathPart || '/'}${q.length ? `?${q.join('&')}` : ''}`;
  };
  return {
    hosts: resolved,
    targetSessionAttrs: tsa as TargetSessionAttrs,
    loadBalance: balance === 'random',
    ...(connectTimeoutS === undefined ? {} : { connectTimeoutS }),
    urlFor,
    single,
    redacted,
  };
}

/**
 * A DATABASE_URL setting: a postgres:// URL libpq would accept, one host or
 * several. Checked at boot so a bad list is one clear line, not a failure at
 * the first connection.
 */
export const pgUrlSetting = z
  .string()
  .min(1)
  .superRefine((url, ctx) => {
    try {
      parsePgUrl(url);
    } catch (error) {
      if (!(error instanceof PgUrlError)) throw error;
      ctx.addIssue({ code: 'custom', message: error.message });
    }
  });

/** The URL with its password replaced by `***`; never throws. For logs and error messages. */
export function redactPgUrl(url: string): string {
  const m = /^([a-z]+:\/\/)([^/?]*)@/i.exec(url);
  if (!m) return url;
  const authority = m[2] ?? '';
  return url.replace(`${m[1]}${authority}@`, `${m[1]}${redactUserinfo(authority)}@`);
}

function redactUserinfo(userinfo: string): string {
  const colon = userinfo.indexOf(':');
  return colon === -1 ? userinfo : `${userinfo.slice(0, colon)}:***`;
}

// Messages name the entry by position, not by its text: a mistyped URL can put a password where a host goes.
function parseHostPort(entry: string, n: number): { host: string; port: number | undefined } {
  const where = `host #${n} of the URL`;
  if (entry.startsWith('[')) {
    const close = entry.indexOf(']');
    if (close === -1) throw new PgUrlError(`${where}: an IPv6 address without its closing ]`);
    const after = entry.slice(close + 1);
    if (after !== '' && !after.startsWith(':')) throw new PgUrlError(`${where}: want [address]:port`);
    return { host: entry.slice(1, close), port: after === '' ? undefined : parsePort(after.slice(1), where) };
  }
  const colon = entry.lastIndexOf(':');
  if (colon === -1) return { host: safeDecode(entry), port: undefined };
  if (entry.indexOf(':') !== colon) throw new PgUrlError(`${where}: an IPv6 address must be in brackets, [addr]:port`);
  const host = safeDecode(entry.slice(0, colon));
  if (host === '') throw new PgUrlError(`${where}: a port without a host`);
  return { host, port: parsePort(entry.slice(colon + 1), where) };
}

function parsePort(text: string, where: string): number | undefined {
  if (text === '') return undefined;
  const port = Number(text);
  if (!/^\d+$/.test(text) || port < 1 || port > 65_535)
    throw new PgUrlError(`${where}: the port is not a number in 1-65535`);
  return port;
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    throw new PgUrlError('bad percent-encoding (write % as %25)');
  }
}
