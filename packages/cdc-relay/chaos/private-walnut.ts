import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type KafkaNodes, type Stack, startStack, type WalnutFixture, walnutFixture } from '@walnut/stack';

export type Delivery = 'at-least-once' | 'exactly-once';

/**
 * The relay's delivery mode under test: CHAOS_DELIVERY, at-least-once by default.
 * `pnpm test:chaos` runs the suites once in each mode.
 */
export function chaosDelivery(): Delivery {
  const mode = process.env.CHAOS_DELIVERY ?? 'at-least-once';
  if (mode !== 'at-least-once' && mode !== 'exactly-once') throw new Error(`CHAOS_DELIVERY=${mode}?`);
  return mode;
}

/** What a chaos suite owns; its context extends this. */
export interface PrivateWalnut {
  dir: string;
  stack: Stack;
  walnut: WalnutFixture;
  /** A test_decoding slot: the independent witness of what committed, in commit order. */
  oracle: string;
}

/**
 * A Walnut on a Postgres and Kafka of its own, whatever the environment says:
 * the suite stops, restarts and freezes them, so it must own them. The oracle
 * slot is created here, before any write, so it sees every committed row.
 * Fills `ctx` as it goes, so that stopPrivateWalnut cleans up after a start
 * that failed half-way.
 */
export async function startPrivateWalnut(
  ctx: PrivateWalnut,
  name: string,
  opts: { env: Record<string, string>; kafkaNodes?: KafkaNodes; log?: (line: string) => void },
): Promise<void> {
  ctx.dir = await mkdtemp(path.join(tmpdir(), `walnut-${name}-`));
  ctx.stack = await startStack({
    dir: ctx.dir,
    env: {},
    ...(opts.kafkaNodes ? { kafkaNodes: opts.kafkaNodes } : {}),
    ...(opts.log ? { log: opts.log } : {}),
  });
  ctx.walnut = await walnutFixture(name, {
    databaseUrl: ctx.stack.databaseUrl,
    brokers: ctx.stack.kafkaBrokers,
    env: { RELAY_DELIVERY: chaosDelivery(), ...opts.env },
  });
  ctx.oracle = `${ctx.walnut.slot}_oracle`;
  await ctx.walnut.pool.query(`SELECT pg_create_logical_replication_slot($1, 'test_decoding')`, [ctx.oracle]);
}

export async function stopPrivateWalnut(ctx: Partial<PrivateWalnut>, log: (line: string) => void): Promise<void> {
  await ctx.walnut?.pool.query('SELECT pg_drop_replication_slot($1)', [ctx.oracle]).catch(() => {});
  await ctx.walnut?.close().catch((error) => log(`close: ${error}`));
  await ctx.stack?.stop();
  if (ctx.dir) await rm(ctx.dir, { recursive: true, force: true });
}
