/**
 * Logical decoding from a hot standby (Postgres 16+; issue 23's should-have):
 * the relay's DATABASE_URL names a physical standby, its slot lives there, and
 * the primary carries no logical walsender and no logical slot. Writes on the
 * primary reach Kafka through the standby, the standby's slot is confirmed
 * past them, and a relay SIGKILLed mid-stream resumes from the standby's slot
 * with nothing lost. On 14 and 15 the server refuses a slot on a standby: the
 * relay must stop with a coded error that says so, not retry forever.
 * Runs on the stack's version (WALNUT_PG_VERSION); the matrix runs it on each.
 */
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  type PostgresHandle,
  pause,
  readTopic,
  type StandbyHandle,
  startPostgres,
  startStandby,
  startWalnutProcess,
  type WalnutFixture,
  type WalnutProcess,
  waitConfirmed,
  waitFor,
  walnutFixture,
} from '@walnut/stack';
import { parseLsn } from '@walnut/schema';
import pg from 'pg';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';

interface Ctx {
  dir: string;
  primary: PostgresHandle;
  standby: StandbyHandle;
  walnut: WalnutFixture;
  standbyPool: pg.Pool;
  relayEnv: Record<string, string>;
  version: number;
  started: WalnutProcess[];
  snapshots: NodeJS.Timeout | undefined;
}

const tests = suite<Ctx>('standby decoding');
const log = (line: string) => console.log(`  standby decoding: ${line}`);

// uvu counts a failed before hook as failed tests without printing why.
tests.before((ctx) =>
  setUp(ctx).catch((error) => {
    console.error(error);
    throw error;
  }),
);

async function setUp(ctx: Ctx): Promise<void> {
  ctx.started = [];
  ctx.dir = await mkdtemp(path.join(tmpdir(), 'walnut-standby-decoding-'));
  // startPostgres runs the servers as the postgres OS user, which must reach their dirs.
  await chmod(ctx.dir, 0o755);
  ctx.primary = await startPostgres({ dir: path.join(ctx.dir, 'primary') });
  // Slot sync is beside the point here (and 17+ only): the standby decodes on its own.
  ctx.standby = await startStandby({ primary: ctx.primary, dir: path.join(ctx.dir, 'standby'), slotSync: false });
  ctx.walnut = await walnutFixture('standby_decoding', { databaseUrl: ctx.primary.url });
  const admin = new pg.Client({ connectionString: ctx.primary.adminUrl });
  await admin.connect();
  ctx.version = Number((await admin.query(`SELECT current_setting('server_version_num') AS v`)).rows[0].v);
  // A standby cannot create the publication: its owner makes it on the primary (the least-privilege
  // fixture already has; CREATE ... IF NOT EXISTS does not exist for publications).
  const exists = await ctx.walnut.pool.query('SELECT 1 FROM pg_publication WHERE pubname = $1', [
    ctx.walnut.env.RELAY_PUBLICATION,
  ]);
  if (exists.rowCount === 0) {
    await ctx.walnut.pool.query(
      `CREATE PUBLICATION ${pg.escapeIdentifier(ctx.walnut.env.RELAY_PUBLICATION as string)} FOR TABLE public.outbox WITH (publish = 'insert')`,
    );
  }
  await admin.end();
  await ctx.standby.waitCaughtUp();
  const standbyUrl = (url: string) => {
    const u = new URL(url);
    u.port = String(ctx.standby.port);
    return u.toString();
  };
  ctx.standbyPool = new pg.Pool({ connectionString: standbyUrl(ctx.walnut.databaseUrl), max: 2 });
  ctx.standbyPool.on('error', () => {});
  ctx.relayEnv = {
    ...ctx.walnut.relayEnv,
    DATABASE_URL: standbyUrl(ctx.walnut.relayEnv.DATABASE_URL as string),
    RELAY_STANDBY: 'false',
  };
  // A slot on a standby is created once the primary logs a running-xacts record (bgwriter does
  // every 15 s); asking for one now and then keeps the test from waiting on that.
  ctx.snapshots = setInterval(() => {
    if (ctx.version < 160_000) return;
    ctx.walnut.pool.query('SELECT pg_log_standby_snapshot()').catch(() => {});
  }, 500);
}

tests.after(async (ctx) => {
  clearInterval(ctx.snapshots);
  await Promise.all(ctx.started.splice(0).map((p) => p.stop('SIGKILL')));
  await ctx.standbyPool?.end().catch(() => {});
  await ctx.walnut?.pool.end().catch(() => {});
  await ctx.standby?.stop('immediate').catch(() => {});
  await ctx.primary?.stop('immediate').catch(() => {});
  if (ctx.dir) await rm(ctx.dir, { recursive: true, force: true });
});

async function writeRows(walnut: WalnutFixture, from: number, count: number): Promise<bigint> {
  const values = Array.from(
    { length: count },
    (_, i) =>
      `(gen_random_uuid(), 'kv', 'k${(from + i) % 17}', 'kv.set', '{"op":"set","key":"k${(from + i) % 17}","value":${from + i}}')`,
  );
  await walnut.pool.query(`INSERT INTO outbox (id, aggregatetype, aggregateid, type, payload) VALUES ${values.join()}`);
  const r = await walnut.pool.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn');
  return parseLsn(r.rows[0]?.lsn as string);
}

function valuesOf(records: ReadonlyArray<{ value: string | null }>): number[] {
  return records.map((r) => (JSON.parse(r.value ?? 'null') as { value: number }).value);
}

tests('14-15: a standby is refused with a coded error; the relay exits', async (ctx) => {
  if (ctx.version >= 160_000) return;
  const relay = startWalnutProcess('relay', ctx.relayEnv);
  ctx.started.push(relay);
  const line = await relay.waitForLine(/STANDBY_DECODING_UNSUPPORTED/, 60_000);
  await waitFor('the relay to exit by itself rather than retry', async () => !relay.running, { timeoutMs: 15_000 });
  assert.is.not(await relay.stop(), 0);
  const { code, err } = JSON.parse(line) as { code: string; err: { message: string } };
  log(`server ${ctx.version}: ${code}: ${err.message}`);
});

tests('16+: the relay streams from the standby; the primary has no logical walsender', async (ctx) => {
  if (ctx.version < 160_000) return;
  const { walnut } = ctx;
  // A publication only the primary could create: named, with the statement to run there.
  const unpublished = startWalnutProcess('relay', { ...ctx.relayEnv, RELAY_PUBLICATION: 'walnut_nowhere' });
  ctx.started.push(unpublished);
  assert.match(await unpublished.waitForLine(/CONFIG_INVALID/), /on the primary, as the owner of/);
  await unpublished.stop('SIGKILL');

  const relay = startWalnutProcess('relay', ctx.relayEnv);
  ctx.started.push(relay);
  await relay.waitForLine(/"state":"streaming"/, 120_000);
  const onStandby = await ctx.standbyPool.query('SELECT slot_type FROM pg_replication_slots WHERE slot_name = $1', [
    walnut.slot,
  ]);
  assert.is(onStandby.rows[0]?.slot_type, 'logical', 'the slot is on the standby');
  const onPrimary = await walnut.pool.query(
    `SELECT (SELECT count(*) FROM pg_replication_slots WHERE slot_type = 'logical')::int AS slots,
            (SELECT count(*) FROM pg_stat_replication WHERE application_name <> $1)::int AS senders`,
    [ctx.standby.applicationName],
  );
  assert.equal(onPrimary.rows[0], { slots: 0, senders: 0 }, 'the primary carries no logical slot or walsender');

  const first = await writeRows(walnut, 0, 500);
  // Confirmed on the standby once Kafka acked: the standby's slot, read there.
  await waitConfirmed(ctx.standbyPool, walnut.slot, first, { what: 'standby slot past the first writes', relay });

  // SIGKILL mid-stream: ten transactions, the relay killed once one of them is confirmed.
  const during = (async () => {
    for (let i = 0; i < 10; i++) {
      await writeRows(walnut, 500 + i * 100, 100);
      await pause(20);
    }
  })();
  // Past `first`: some of the ten are in Kafka and confirmed, the rest still coming.
  await waitConfirmed(ctx.standbyPool, walnut.slot, first + 1n, { what: 'standby slot mid-stream', relay });
  await relay.stop('SIGKILL');
  await during;
  const resumed = startWalnutProcess('relay', ctx.relayEnv);
  ctx.started.push(resumed);
  await resumed.waitForLine(/"state":"streaming"/, 120_000);
  const last = await writeRows(walnut, 1_500, 500);
  await waitConfirmed(ctx.standbyPool, walnut.slot, last, {
    what: 'standby slot past the last writes',
    relay: resumed,
  });
  const records = await readTopic(walnut.kafka, walnut.topic, (all) => new Set(valuesOf(all)).size >= 2_000, 120_000);
  const seen = valuesOf(records);
  const missing = Array.from({ length: 2_000 }, (_, i) => i).filter((v) => !seen.includes(v));
  assert.equal(missing, [], 'every row written on the primary reached Kafka through the standby');
  // Per key, values only grow in first occurrence (commit order per key).
  const firstSeen = new Map<number, number>();
  for (const v of seen) if (!firstSeen.has(v)) firstSeen.set(v, firstSeen.size);
  const order = [...firstSeen.keys()];
  const violations = order.filter((v, i) => order.slice(0, i).some((w) => w % 17 === v % 17 && w > v)).length;
  assert.is(violations, 0, 'per-key commit order');
  // The status view reads on the standby (pg_current_wal_lsn() would raise there).
  const slotRow = await ctx.standbyPool.query<{ lsn: string; lag_bytes: string | null }>(
    'SELECT confirmed_flush_lsn::text AS lsn, lag_bytes FROM walnut.replication_status WHERE slot_name = $1',
    [walnut.slot],
  );
  assert.ok(slotRow.rows[0]?.lag_bytes !== null && slotRow.rows[0]?.lag_bytes !== undefined, 'lag on the standby');
  log(
    `server ${ctx.version}: 2,000 rows through the standby's slot (confirmed ${slotRow.rows[0]?.lsn}), ${seen.length - 2_000} duplicates after the SIGKILL, 0 missing`,
  );
});

tests.run();
