import pg from 'pg';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { PgUrlError, parsePgUrl, pgUrlSetting, redactPgUrl } from './pg-hosts.ts';

/** What node-postgres makes of a URL (no connection is opened). */
const parse = (url: string) => {
  const client = new pg.Client({ connectionString: url }) as pg.Client & {
    connectionParameters: { application_name?: string; ssl: unknown };
  };
  return {
    host: client.host,
    port: client.port,
    user: client.user,
    password: client.password,
    database: client.database,
    application_name: client.connectionParameters.application_name,
    ssl: client.connectionParameters.ssl,
  };
};

const hostsOf = (url: string) => parsePgUrl(url).hosts.map((h) => `${h.host}:${h.port}`);

test('a one-host URL is single and passed through untouched', () => {
  for (const url of [
    'postgres://postgres@127.0.0.1:5432/walnut',
    'postgresql://u:p%40ss@db.example.com/app?sslmode=require&application_name=x',
    'postgres://u@[::1]:6543/db',
    'postgres:///walnut?host=/var/run/postgresql',
    'postgres://u@h/db?target_session_attrs=any',
    'postgres://localhost',
  ]) {
    const parsed = parsePgUrl(url);
    assert.ok(parsed.single, url);
    assert.is(parsed.urlFor(parsed.hosts[0] ?? { host: '', port: 5432 }), url);
  }
});

test('a host list in libpq order, each with its port or 5432', () => {
  assert.equal(hostsOf('postgres://u@h1:5433,h2,[::1]:6000,[fe80::1]/db'), [
    'h1:5433',
    'h2:5432',
    '::1:6000',
    'fe80::1:5432',
  ]);
  const parsed = parsePgUrl('postgres://u:pw@h1:5433,h2/db?target_session_attrs=read-write');
  assert.is(parsed.single, false);
  assert.is(parsed.targetSessionAttrs, 'read-write');
  assert.is(parsed.loadBalance, false);
});

test('each host gets a one-host URL node-postgres reads with the same user, password, database and params', () => {
  const parsed = parsePgUrl(
    'postgres://app%20user:p%40ss@h1:5433,[::1]:6000/my%20db?target_session_attrs=primary&sslmode=disable&application_name=walnut&connect_timeout=3',
  );
  const [h1, v6] = parsed.hosts as [(typeof parsed.hosts)[0], (typeof parsed.hosts)[0]];
  assert.is(
    parsed.urlFor(h1),
    'postgres://app%20user:p%40ss@h1:5433/my%20db?sslmode=disable&application_name=walnut&connect_timeout=3',
  );
  const config = parse(parsed.urlFor(v6));
  assert.is(config.host, '::1');
  assert.is(config.port, 6000);
  assert.is(config.user, 'app user');
  assert.is(config.password, 'p@ss');
  assert.is(config.database, 'my db');
  assert.is(config.application_name, 'walnut');
  assert.is(config.ssl, false);
  assert.is(parsed.connectTimeoutS, 3);
});

test('host= and port= query lists override the URI hosts, as libpq does', () => {
  assert.equal(hostsOf('postgres://u@ignored/db?host=a,b,c&port=1,2,3'), ['a:1', 'b:2', 'c:3']);
  assert.equal(hostsOf('postgres:///db?host=a,b&port=6000'), ['a:6000', 'b:6000']);
  assert.equal(hostsOf('postgres://a,b/db?port=7000'), ['a:7000', 'b:7000']);
  assert.equal(hostsOf('postgres:///db?host=a,b'), ['a:5432', 'b:5432']);
  assert.equal(hostsOf('postgres://u@/db?host=%2Ftmp,%2Fvar%2Frun&port=5433'), ['/tmp:5433', '/var/run:5433']);
});

test('a Unix socket host keeps its directory in ?host= of its URL', () => {
  const parsed = parsePgUrl('postgres://u@/db?host=/tmp,h2&target_session_attrs=read-write');
  const [socket] = parsed.hosts as [(typeof parsed.hosts)[0]];
  const config = parse(parsed.urlFor(socket));
  assert.is(config.host, '/tmp');
  assert.is(config.port, 5432);
  assert.is(config.database, 'db');
});

test('target_session_attrs: every libpq value; load_balance_hosts=random', () => {
  for (const tsa of ['any', 'read-write', 'read-only', 'primary', 'standby', 'prefer-standby']) {
    assert.is(parsePgUrl(`postgres://h1,h2/db?target_session_attrs=${tsa}`).targetSessionAttrs, tsa);
  }
  assert.is(parsePgUrl('postgres://h1,h2/db').targetSessionAttrs, 'any');
  assert.ok(parsePgUrl('postgres://h1,h2/db?load_balance_hosts=random').loadBalance);
  // One host that must be writable is checked too: not passed through.
  assert.is(parsePgUrl('postgres://h1/db?target_session_attrs=read-write').single, false);
});

test('bad URLs are clear errors that do not echo the password', () => {
  const cases: [string, RegExp][] = [
    ['mysql://h/db', /must start with postgres:\/\//],
    ['h1,h2/db', /must start with postgres:\/\//],
    ['postgres://h1,h2/db?target_session_attrs=writable', /target_session_attrs=writable: want one of any, read-write/],
    ['postgres://h1:99999,h2/db', /host #1 of the URL: the port is not a number/],
    ['postgres://h1,h2:abc/db', /host #2 of the URL: the port is not a number/],
    ['postgres://h1,::1/db', /host #2 of the URL: an IPv6 address must be in brackets/],
    ['postgres://h1,[::1/db', /host #2 of the URL: an IPv6 address without its closing \]/],
    ['postgres://h1,[::1]x/db', /host #2 of the URL: want \[address\]:port/],
    ['postgres://h1,:5432/db', /host #2 of the URL: a port without a host/],
    ['postgres://h1,,h3/db', /an empty host in a list of several/],
    ['postgres://a,b,c/db?port=1,2', /could not match 2 port numbers to 3 hosts/],
    ['postgres://h1,h2/db?load_balance_hosts=yes', /load_balance_hosts=yes: want disable or random/],
    ['postgres://h1,h2/db?connect_timeout=soon', /connect_timeout=soon: want whole seconds/],
    ['postgres://h1,h2/db?sslmode', /query parameter "sslmode" has no value/],
    ['postgres://h1/db?hostaddr=10.0.0.1', /hostaddr is not supported/],
    ['postgres://u:secret@h1/db?x=%zz', /bad percent-encoding/],
  ];
  for (const [url, message] of cases) {
    try {
      parsePgUrl(url);
      assert.unreachable(`${url} parsed`);
    } catch (error) {
      assert.instance(error, PgUrlError, url);
      assert.match((error as Error).message, message, url);
    }
  }
  // A password with an unencoded '/' ends the authority early: the error must not show it.
  try {
    parsePgUrl('postgres://user:se/cret@h1,h2/db');
    assert.unreachable('parsed');
  } catch (error) {
    assert.not.match((error as Error).message, /se|cret/);
  }
});

test('pgUrlSetting: a runnable reports a bad DATABASE_URL as one line at boot', () => {
  const bad = pgUrlSetting.safeParse('postgres://h1,h2/db?target_session_attrs=master');
  assert.is(bad.success, false);
  assert.match(bad.error?.issues[0]?.message ?? '', /target_session_attrs=master/);
  assert.ok(pgUrlSetting.safeParse('postgres://u:p@h1:5432,h2:5433/db?target_session_attrs=read-write').success);
});

test('redaction hides the password and keeps the rest', () => {
  assert.is(redactPgUrl('postgres://u:s3cret@h1,h2/db?x=1'), 'postgres://u:***@h1,h2/db?x=1');
  assert.is(redactPgUrl('postgres://u@h1/db'), 'postgres://u@h1/db');
  assert.is(parsePgUrl('postgres://u:s3cret@h1,h2/db').redacted, 'postgres://u:***@h1,h2/db');
});

test.run();
