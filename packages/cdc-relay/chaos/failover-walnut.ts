import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  multiHostUrl,
  type Stack,
  type StandbyHandle,
  startStack,
  startStandby,
  type WalnutFixture,
  type WalnutProcess,
  walnutFixture,
} from '@walnut/stack';
import pg from 'pg';
import { withPgClient } from '../src/pg-client.ts';
import { ApiLoad } from './load.ts';
import type { Delivery } from './private-walnut.ts';
import { WitnessTail } from './witness.ts';

/**
 * The Postgres major the failover suite runs on: FAILOVER_PG_VERSION, else
 * WALNUT_PG_VERSION, else 18; the stack then runs that registry build (unless
 * PG_BIN says otherwise: the suite checks the server it got).
 */
export function failoverPgVersion(): number {
  const version = Number(process.env.FAILOVER_PG_VERSION ?? process.env.WALNUT_PG_VERSION ?? '18');
  if (!Number.isInteger(version) || version < 14) throw new Error(`FAILOVER_PG_VERSION=${version}?`);
  process.env.WALNUT_PG_VERSION = String(version);
  return version;
}

/** The modes this run checks: CHAOS_DELIVERY when set, else both, side by side on one cluster. */
export function failoverDeliveries(): Delivery[] {
  const mode = process.env.CHAOS_DELIVERY;
  if (mode === undefined) return ['at-least-once', 'exactly-once'];
  if (mode !== 'at-least-once' && mode !== 'exactly-once') throw new Error(`CHAOS_DELIVERY=${mode}?`);
  return [mode];
}

/**
 * One Walnut (database, slot, topic, API, relay, applier, load) on the
 * failover cluster; several share the cluster and its one failover.
 */
export interface Lane {
  delivery: Delivery;
  walnut: WalnutFixture;
  /** The lane's database on the primary, and on the standby (the promoted server, later). */
  primaryPool: pg.Pool;
  standbyPool: pg.Pool;
  witness: WitnessTail;
  relay: WalnutProcess;
  applier: WalnutProcess;
  api: WalnutProcess;
  apiUrl: string;
  load: ApiLoad;
}

/** What the failover suite owns: a private primary, its standby, Kafka, and the lanes on them. */
export interface FailoverWalnut {
  dir: string;
  stack: Stack;
  standby: StandbyHandle;
  lanes: Lane[];
}

/**
 * A primary and a streaming standby (with slot sync on 17+), one Kafka, and
 * per delivery mode a Walnut whose API, relay and applier know both servers
 * only by the multi-host URL (target_session_attrs=read-write), as a user's
 * would behind Patroni or a managed service. Fills `ctx` as it goes, so that
 * stopFailoverWalnut cleans up after a start that failed half-way.
 *
 * Synchronous replication (synchronous_standby_names) on the primary: a commit
 * is acknowledged to the API only once the standby has flushed it, so every
 * write the API accepted must be in the promoted server's outbox. With async
 * replication, commits the standby never received are lost by Postgres itself
 * at the failover; they were never durable in the cluster, and the relay (held
 * back by synchronized_standby_slots) never sent them either. Either way the
 * reference for "committed" is the promoted server's outbox, read in commit
 * order by a failover witness slot; sync replication adds the check that no
 * acknowledged write is missing from it.
 */
export async function startFailoverWalnut(
  ctx: FailoverWalnut,
  name: string,
  opts: {
    /** The major the servers must run (see failoverPgVersion). */
    version: number;
    deliveries: Delivery[];
    /** Postgres 17+: the relay's slot and the witness slots are failover slots, synced to the standby. */
    slotSync: boolean;
    env: Record<string, string>;
    load: { ratePerSecond: number; keys: number; maxInFlight: number };
    log: (line: string) => void;
  },
): Promise<void> {
  ctx.lanes = [];
  ctx.dir = await mkdtemp(path.join(tmpdir(), `walnut-${name}-`));
  await chmod(ctx.dir, 0o755);
  ctx.stack = await startStack({ dir: path.join(ctx.dir, 'primary'), env: {} });
  ctx.standby = await startStandby({
    primary: ctx.stack.postgres,
    dir: path.join(ctx.dir, 'standby'),
    name: 'walnut_standby',
    slotSync: opts.slotSync,
  });
  opts.log(
    `primary on :${ctx.stack.postgres.port}, standby on :${ctx.standby.port} (slot sync ${opts.slotSync ? 'on' : 'off'})`,
  );
  await withPgClient(ctx.stack.postgres.adminUrl, async (client) => {
    const version = await client.query<{ v: string }>(`SELECT current_setting('server_version_num') AS v`);
    const running = Number(version.rows[0]?.v) / 10_000;
    if (Math.floor(running) !== opts.version) throw new Error(`asked for Postgres ${opts.version}, got ${running}`);
    await client.query(`ALTER SYSTEM SET synchronous_standby_names = 'walnut_standby'`);
    await client.query('SELECT pg_reload_conf()');
  });

  for (const delivery of opts.deliveries) {
    const walnut = await walnutFixture(`${name}_${delivery === 'exactly-once' ? 'eos' : 'alo'}`, {
      databaseUrl: ctx.stack.postgres.url,
      brokers: ctx.stack.kafkaBrokers,
      env: { RELAY_DELIVERY: delivery, ...opts.env },
      // The relay's own DATABASE_URL is the multi-host one below; the role under test here is not least privilege.
      relayRole: 'owner',
    });
    const database = new URL(walnut.databaseUrl).pathname.slice(1);
    // Every runnable knows the cluster only by this URL: after the failover it finds the promoted server by itself.
    walnut.env.DATABASE_URL = multiHostUrl([ctx.stack.postgres, ctx.standby], { database });
    const primaryPool = pool(walnut.databaseUrl);
    const standbyUrl = new URL(walnut.databaseUrl);
    standbyUrl.port = String(ctx.standby.port);
    const standbyPool = pool(standbyUrl.toString());
    const witness = new WitnessTail(`${walnut.slot}_witness`);
    const lane = { delivery, walnut, primaryPool, standbyPool, witness } as Lane;
    ctx.lanes.push(lane);
    // The witness exists before any write, so it sees every committed row. (The failover argument is 17+.)
    await primaryPool.query(
      opts.slotSync
        ? `SELECT pg_create_logical_replication_slot($1, 'test_decoding', false, false, true)`
        : `SELECT pg_create_logical_replication_slot($1, 'test_decoding')`,
      [witness.slot],
    );
  }
  for (const lane of ctx.lanes) {
    lane.relay = await lane.walnut.startRelay();
    lane.applier = await lane.walnut.startApplier();
    const api = await lane.walnut.startApi();
    lane.api = api.process;
    lane.apiUrl = api.url;
    lane.load = new ApiLoad(lane.apiUrl, opts.load);
    opts.log(`${lane.delivery}: relay, applier and API up on ${lane.walnut.env.DATABASE_URL}`);
  }
}

export async function stopFailoverWalnut(ctx: Partial<FailoverWalnut>, log: (line: string) => void): Promise<void> {
  for (const lane of ctx.lanes ?? []) {
    await lane.load?.stop();
    for (const p of [lane.api, lane.relay, lane.applier]) await p?.stop('SIGKILL');
    await lane.primaryPool?.end().catch(() => {});
    await lane.standbyPool?.end().catch(() => {});
    // The fixture's own pool points at the primary, which may be dead: close() would wait for it.
    await lane.walnut?.pool.end().catch(() => {});
  }
  await ctx.standby?.stop('immediate').catch((error) => log(`standby stop: ${error}`));
  await ctx.stack?.stop().catch((error) => log(`stack stop: ${error}`));
  if (ctx.dir) await rm(ctx.dir, { recursive: true, force: true });
}

/** The witness slot of `lane`, synced = true on the standby (17+). */
/**
 * True once the standby holds a persistent synced copy of the slot. A slot the sync worker has
 * only begun to copy shows synced = true but stays temporary until it reaches a consistent point
 * on the standby, and promotion drops temporary slots: a failover then loses it (seen on 17).
 */
export async function syncedOnStandby(lane: Lane, slot: string): Promise<boolean> {
  const r = await lane.standbyPool.query<{ synced: boolean; temporary: boolean }>(
    'SELECT synced, temporary FROM pg_replication_slots WHERE slot_name = $1',
    [slot],
  );
  const row = r.rows[0];
  return row?.synced === true && row.temporary === false;
}

function pool(url: string): pg.Pool {
  const p = new pg.Pool({ connectionString: url, max: 2, connectionTimeoutMillis: 5_000 });
  p.on('error', () => {});
  return p;
}
