/**
 * High availability: two relays on one slot under a steady outbox load. The
 * active one is SIGKILLed or frozen (SIGSTOP) in turn, ten times (CHAOS_TAKEOVERS); each time
 * the standby must take over, and the old one (restarted, or resumed) must
 * come back as the standby, never streaming beside it. Then, against a
 * test_decoding witness: nothing committed is missing and per key the topic
 * keeps commit order. Printed per takeover: the time from the fault to the
 * standby streaming, and the longest gap between a row's commit and its
 * record's Kafka timestamp among the rows committed around it.
 *
 * A frozen relay still holds its replication connection: Postgres frees the
 * slot after wal_sender_timeout, set to 3 s here (docs/relay.md says how to
 * tune it).
 */
import {
  checkDelivery,
  formatReport,
  lineTime,
  type Phase,
  pause,
  readWholeTopic,
  type WalnutProcess,
  waitWholeTopic,
  walLsn,
} from '@walnut/stack';
import pg from 'pg';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { OutboxLoad } from './outbox-load.ts';
import { chaosDelivery, type PrivateWalnut, startPrivateWalnut, stopPrivateWalnut } from './private-walnut.ts';
import { committedRows } from './witness.ts';

interface Ctx extends PrivateWalnut {
  relays: [WalnutProcess, WalnutProcess];
  loadPool: pg.Pool;
}

const WAL_SENDER_TIMEOUT_MS = 3_000;
/** CHAOS_TAKEOVERS: the compatibility matrix runs a few per Postgres version, not ten. */
const TAKEOVERS = Number(process.env.CHAOS_TAKEOVERS || 10);
const DELIVERY = chaosDelivery();
const takeover = suite<Ctx>(`takeover (${DELIVERY})`);
const log = (line: string) => console.log(`  takeover ${DELIVERY}: ${line}`);

takeover.before(async (ctx) => {
  await startPrivateWalnut(ctx, 'takeover', { env: { RELAY_BACKOFF_MAX_MS: '1000' } });
  await ctx.walnut.pool.query(`ALTER SYSTEM SET wal_sender_timeout = '${WAL_SENDER_TIMEOUT_MS}ms'`);
  await ctx.walnut.pool.query('SELECT pg_reload_conf()');
  ctx.loadPool = new pg.Pool({ connectionString: ctx.walnut.databaseUrl, max: 8 });
  ctx.loadPool.on('error', () => {});
  const active = await ctx.walnut.startRelay();
  ctx.relays = [active, await ctx.walnut.startStandbyRelay()];
  await ctx.walnut.startApplier();
});

takeover.after(async (ctx) => {
  for (const relay of ctx.relays ?? []) relay.child.kill('SIGCONT');
  await ctx.loadPool?.end().catch(() => {});
  await stopPrivateWalnut(ctx, log);
});

takeover('a standby takes over from a killed or frozen relay, and nothing is lost or reordered', async (ctx) => {
  const { walnut } = ctx;
  const load = new OutboxLoad(ctx.loadPool, { ratePerSecond: 150, keys: 200, maxInFlight: 16 });
  const phases: Phase[] = [{ name: 'warm-up', startLsn: 0n }];
  const takeovers: Array<{ fault: string; ms: number; from: number; to: number }> = [];
  load.start();
  await pause(2_000);

  for (let i = 0; i < TAKEOVERS; i++) {
    const fault = i % 2 === 0 ? 'SIGKILL' : 'SIGSTOP';
    const [active, standby] = ctx.relays;
    phases.push({ name: `${i + 1} ${fault}`, startLsn: await walLsn(walnut.pool) });
    const standbyFrom = standby.output.length;
    const activeFrom = active.output.length;
    const at = Date.now();
    active.child.kill(fault);
    const streamingAt = await lineTime(standby, standbyFrom, /"state":"streaming"/, 60_000);
    takeovers.push({ fault, ms: streamingAt - at, from: at, to: streamingAt });
    log(`${fault} of the active relay: the standby streams ${streamingAt - at} ms later`);
    // The old active comes back as the standby: restarted after a kill, resumed after a freeze.
    let returning = active;
    if (fault === 'SIGKILL') {
      returning = await walnut.startStandbyRelay();
    } else {
      active.child.kill('SIGCONT');
      await lineTime(active, activeFrom, /"state":"standby"/, 60_000);
    }
    assert.ok(standby.running, 'the new active relay runs');
    ctx.relays = [standby, returning];
    await pause(1_500 + Math.random() * 1_500);
  }
  phases.push({ name: 'settle', startLsn: await walLsn(walnut.pool) });
  await pause(2_000);
  await load.stop();
  log(`load stopped: ${load.committedTx} transactions (${load.committedRows} rows) committed, ${load.failed} failed`);

  const witness = await committedRows(walnut.pool, ctx.oracle);
  assert.ok(witness.length >= load.committedRows, 'the witness saw every committed row');
  await waitWholeTopic(
    'every committed row on the topic',
    walnut.kafka,
    walnut.topic,
    (all) => new Set(all.map((r) => r.headers.id)).size >= witness.length,
    { timeoutMs: 120_000, intervalMs: 2_000 },
  ).catch(() => {});
  const records = await readWholeTopic(walnut.kafka, walnut.topic);
  const report = checkDelivery(
    witness,
    phases,
    records.map((r) => ({ id: r.headers.id, key: r.key, partition: r.partition, offset: r.offset })),
  );
  log(`${records.length} records read\n${formatReport(report)}`);

  // Per takeover: the longest commit → Kafka gap among rows committed between the fault and the
  // standby streaming (a wider window would reach into the next takeover's outage).
  const gaps = takeovers.map(({ from, to }) => {
    let longest = 0;
    for (const r of records) {
      const committedAt = Date.parse(r.headers['walnut-commit-time'] ?? '');
      if (committedAt >= from - 500 && committedAt <= to) longest = Math.max(longest, r.timestamp - committedAt);
    }
    return longest;
  });
  for (const kind of ['SIGKILL', 'SIGSTOP']) {
    const own = takeovers.map((t, i) => ({ ...t, gap: gaps[i] as number })).filter((t) => t.fault === kind);
    const ms = own.map((t) => t.ms).sort((a, b) => a - b);
    log(
      `${kind}: takeover ms min ${ms[0]} / median ${ms[Math.floor(ms.length / 2)]} / max ${ms[ms.length - 1]}; ` +
        `longest commit→Kafka gap per takeover (ms): ${own.map((t) => t.gap).join(', ')}`,
    );
  }

  assert.is(report.foreign, 0, 'every record on the topic is a committed row');
  assert.is(report.total.missing, 0, `committed rows missing:\n${formatReport(report)}`);
  assert.is(report.total.firstOrderViolations, 0, 'per key, first occurrences follow commit order');
  assert.is(report.total.lastOrderViolations, 0, 'per key, last occurrences follow commit order');
  if (DELIVERY === 'exactly-once') assert.is(report.total.duplicates, 0, 'exactly-once: no record twice');
  const killed = takeovers.filter((t) => t.fault === 'SIGKILL').map((t) => t.ms);
  assert.ok(Math.max(...killed) <= 5_000, `after a crash the standby streams within 5 s (${killed.join(', ')} ms)`);
  // Two relays never streamed at once: each takeover began only once the slot was free.
  const streaming = ctx.relays.filter((r) => r.running && /"state":"streaming"/.test(lastState(r)));
  assert.is(streaming.length, 1, 'exactly one relay streams at the end');
});

/** The last state line a relay printed. */
function lastState(relay: WalnutProcess): string {
  for (let i = relay.output.length - 1; i >= 0; i--) {
    if ((relay.output[i] as string).includes('"state":"')) return relay.output[i] as string;
  }
  return '';
}

takeover.run();
