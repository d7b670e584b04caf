import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { StackError } from './errors.ts';
import { isRoot, run } from './exec.ts';
import { type PostgresHandle, startPostgres } from './postgres.ts';
import { waitFor } from './wait-for.ts';

/**
 * A streaming physical standby of a primary from startPostgres, for failover
 * tests: kill the primary (`primary.kill()`), `standby.promote()`, and clients
 * with a multi-host URL find the promoted server.
 *
 * The registry's server builds have no pg_basebackup, so the standby starts
 * from a copy of the primary's data directory taken while the primary is
 * stopped (a fast shutdown, then a restart on the same port: the primary is
 * down for a second or two, and its clients must reconnect). What
 * pg_basebackup leaves out is left out: postmaster.pid/opts and pg_replslot
 * (the standby gets its logical slots by slot sync, not by copy).
 *
 * With `slotSync` (Postgres 17+), set up as failover slots need
 * (https://www.postgresql.org/docs/17/logicaldecoding-explanation.html#LOGICALDECODING-REPLICATION-SLOTS-SYNCHRONIZATION):
 * - on the primary, the standby's physical slot is listed in
 *   `synchronized_standby_slots`, so no logical walsender sends a change the
 *   standby has not received (else a promoted standby's slot could lag behind
 *   what a client already confirmed);
 * - on the standby, `sync_replication_slots=on`, `hot_standby_feedback=on`,
 *   `primary_slot_name` and a `dbname` in `primary_conninfo`.
 * A logical slot is synced only if created with failover (`failover => true`)
 * and only once it has advanced past the standby's xmin horizon:
 * waitSlotSynced() waits for that; fail over before it and the slot is lost.
 *
 * `synchronized_standby_slots` is set with ALTER SYSTEM on the primary after
 * the copy, so the standby does not inherit it: a promoted server that waits
 * for a standby slot it does not have would hold back every logical walsender.
 */
export interface StandbyHandle extends PostgresHandle {
  /** The physical slot on the primary that the standby streams from. */
  slotName: string;
  /** Its application_name in the primary's pg_stat_replication. */
  applicationName: string;
  /** Promotes it (pg_promote, waiting up to 60 s) and resolves once it accepts writes. */
  promote(): Promise<void>;
  /** Resolves once the standby has replayed everything the primary had written when called. */
  waitCaughtUp(timeoutMs?: number): Promise<void>;
  /**
   * Resolves once the standby holds logical slot `name` with synced = true
   * and a confirmed_flush_lsn at least the primary's (when the primary is up).
   * Postgres 17+ with `slotSync` only. The slot must advance (a relay
   * confirming, or pg_replication_slot_advance) before it can be synced: a
   * slot still at its creation point is never synced ("could lead to data loss").
   */
  waitSlotSynced(name: string, timeoutMs?: number): Promise<void>;
}

export interface StandbyOptions {
  /** The running primary to copy and stream from. It is stopped for the copy and started again. */
  primary: PostgresHandle;
  /** Where the standby lives (`<dir>/pg`, `<dir>/postgres.log`, `<dir>/pg.port`); must not hold a cluster yet. */
  dir: string;
  /** The standby's name: its physical slot on the primary and its application_name. Default `walnut_standby`. */
  name?: string;
  /**
   * Failover-slot sync (Postgres 17+): see the header. Default: true on 17+,
   * and an error when asked for on 16 and older.
   */
  slotSync?: boolean;
  /** More standby server settings. */
  extraSettings?: readonly string[];
  log?: (line: string) => void;
}

export async function startStandby(opts: StandbyOptions): Promise<StandbyHandle> {
  const log = opts.log ?? (() => {});
  const { primary } = opts;
  if (!primary.owned) throw new StackError('NOT_OWNED', 'a standby needs a primary the stack started (its data dir)');
  const name = opts.name ?? 'walnut_standby';
  if (!/^[a-z0-9_]+$/.test(name)) throw new StackError('POSTGRES_FAILED', `standby name ${name}: use [a-z0-9_]`);
  const dir = path.resolve(opts.dir);
  const dataDir = path.join(dir, 'pg');
  if (existsSync(path.join(dataDir, 'PG_VERSION'))) {
    throw new StackError('POSTGRES_FAILED', `${dataDir} already holds a cluster: give the standby a fresh dir`);
  }

  const version = await withClient(primary.adminUrl, async (c) =>
    Number((await c.query<{ v: string }>("SELECT current_setting('server_version_num') AS v")).rows[0]?.v),
  );
  const slotSync = opts.slotSync ?? version >= 170_000;
  if (slotSync && version < 170_000) {
    throw new StackError('POSTGRES_FAILED', `slot sync needs Postgres 17+, the primary runs ${version}`);
  }

  // Made before the copy so the primary keeps every WAL segment from the copy's checkpoint on.
  await withClient(primary.adminUrl, async (c) => {
    const exists = await c.query('SELECT 1 FROM pg_replication_slots WHERE slot_name = $1', [name]);
    if (exists.rowCount === 0) await c.query('SELECT pg_create_physical_replication_slot($1, true)', [name]);
  });

  log(`copying ${primary.dataDir} to ${dataDir} for a standby (primary stopped meanwhile)`);
  await primary.stop('fast');
  try {
    await mkdir(dir, { recursive: true });
    await rm(dataDir, { recursive: true, force: true }); // an empty one from a failed attempt
    // cp -a keeps the postgres OS user's ownership and the 0700 mode postgres insists on.
    await run('cp', ['-a', primary.dataDir, dataDir], { code: 'POSTGRES_FAILED' });
  } finally {
    await primary.start();
  }
  for (const leftover of ['postmaster.pid', 'postmaster.opts']) await rm(path.join(dataDir, leftover), { force: true });
  await run('find', [path.join(dataDir, 'pg_replslot'), '-mindepth', '1', '-delete'], { code: 'POSTGRES_FAILED' });
  await dropAutoConf(dataDir, 'synchronized_standby_slots');
  await writeFile(path.join(dataDir, 'standby.signal'), '');
  if (isRoot) {
    await run('chown', ['postgres:postgres', path.join(dataDir, 'standby.signal')], { code: 'POSTGRES_FAILED' });
  }

  const primaryDb = new URL(primary.url).pathname.slice(1) || 'postgres';
  const conninfo = `host=127.0.0.1 port=${primary.port} user=postgres dbname=${primaryDb} application_name=${name}`;
  const settings = [
    `primary_conninfo=${conninfo}`,
    `primary_slot_name=${name}`,
    'hot_standby=on',
    'hot_standby_feedback=on',
    ...(slotSync ? ['sync_replication_slots=on'] : []),
    ...(opts.extraSettings ?? []),
  ];
  const standby = await startPostgres({ dir, log, extraSettings: settings });

  if (slotSync) {
    await withClient(primary.adminUrl, async (c) => {
      await c.query(`ALTER SYSTEM SET synchronized_standby_slots = ${pg.escapeLiteral(name)}`);
      await c.query('SELECT pg_reload_conf()');
    });
  }
  await waitFor(
    `standby ${name} streaming from the primary`,
    () =>
      withClient(primary.adminUrl, async (c) => {
        const r = await c.query(
          "SELECT 1 FROM pg_stat_replication WHERE application_name = $1 AND state = 'streaming'",
          [name],
        );
        return (r.rowCount ?? 0) > 0;
      }),
    { timeoutMs: 60_000, intervalMs: 100 },
  );
  log(`standby ${name} streaming on 127.0.0.1:${standby.port}`);

  const primaryLsn = () =>
    withClient(
      primary.adminUrl,
      async (c) => (await c.query<{ lsn: string }>('SELECT pg_current_wal_lsn() AS lsn')).rows[0]?.lsn,
    );

  return {
    ...standby,
    slotName: name,
    applicationName: name,
    async promote() {
      log(`promoting standby ${name} on 127.0.0.1:${standby.port}`);
      await withClient(standby.adminUrl, async (c) => {
        const r = await c.query<{ ok: boolean }>('SELECT pg_promote(true, 60) AS ok');
        if (!r.rows[0]?.ok) throw new StackError('POSTGRES_FAILED', `standby ${name} did not promote within 60 s`);
      });
      await waitFor(`standby ${name} out of recovery`, () =>
        withClient(standby.adminUrl, async (c) => {
          const r = await c.query<{ rec: boolean }>('SELECT pg_is_in_recovery() AS rec');
          return r.rows[0]?.rec === false;
        }),
      );
    },
    async waitCaughtUp(timeoutMs = 60_000) {
      const target = await primaryLsn();
      await waitFor(
        `standby ${name} to replay ${target}`,
        () =>
          withClient(standby.adminUrl, async (c) => {
            const r = await c.query<{ ok: boolean }>('SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn AS ok', [target]);
            return r.rows[0]?.ok === true;
          }),
        { timeoutMs },
      );
    },
    async waitSlotSynced(slot: string, timeoutMs = 120_000) {
      if (!slotSync) throw new StackError('POSTGRES_FAILED', `standby ${name} was started without slot sync`);
      await waitFor(
        `logical slot ${slot} synced to standby ${name}`,
        async () => {
          const onPrimary = await withClient(primary.adminUrl, async (c) => {
            // A running-xacts record lets the standby's horizon pass the slot's sooner (else up to 15 s, bgwriter's pace).
            const r = await c.query<{ lsn: string | null }>(
              'SELECT confirmed_flush_lsn AS lsn, pg_log_standby_snapshot() FROM pg_replication_slots WHERE slot_name = $1',
              [slot],
            );
            return r.rows[0]?.lsn ?? null;
          }).catch(() => null); // a primary already down: any synced copy will do
          return withClient(standby.adminUrl, async (c) => {
            const r = await c.query<{ ok: boolean }>(
              `SELECT synced AND ($2::pg_lsn IS NULL OR confirmed_flush_lsn >= $2::pg_lsn) AS ok
                 FROM pg_replication_slots WHERE slot_name = $1`,
              [slot, onPrimary],
            );
            return r.rows[0]?.ok === true;
          });
        },
        { timeoutMs, intervalMs: 200 },
      );
    },
  };
}

/** `postgres://postgres@127.0.0.1:<p1>,127.0.0.1:<p2>/<db>?target_session_attrs=read-write`, hosts in the order given. */
export function multiHostUrl(
  servers: readonly PostgresHandle[],
  opts: { database?: string; targetSessionAttrs?: string } = {},
): string {
  const first = servers[0];
  if (!first) throw new StackError('POSTGRES_FAILED', 'multiHostUrl needs at least one server');
  const database = opts.database ?? new URL(first.url).pathname.slice(1);
  const hosts = servers.map((s) => `127.0.0.1:${s.port}`).join(',');
  return `postgres://postgres@${hosts}/${database}?target_session_attrs=${opts.targetSessionAttrs ?? 'read-write'}`;
}

async function dropAutoConf(dataDir: string, setting: string): Promise<void> {
  const file = path.join(dataDir, 'postgresql.auto.conf');
  if (!existsSync(file)) return;
  const lines = (await readFile(file, 'utf8')).split('\n');
  const kept = lines.filter((line) => !line.trimStart().startsWith(setting));
  if (kept.length !== lines.length) await writeFile(file, kept.join('\n'));
}

async function withClient<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5_000 });
  client.on('error', () => {});
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => {});
  }
}
