/**
 * A primary failover under load, on real servers (issue 23, item 5). A private
 * primary and a physical standby, one Kafka, and per delivery mode (both side
 * by side unless CHAOS_DELIVERY picks one) an API, relay and applier that know
 * the cluster only by its multi-host URL (target_session_attrs=read-write).
 * Under a steady write load the primary is SIGKILLed (the postmaster and every
 * backend, as a machine dies) and the standby promoted; nothing is restarted.
 *
 * Postgres 17+ (failover slots synced to the standby): the relay continues on
 * the promoted server from its synced slot. Required: no committed row missing
 * from Kafka, per key first and last occurrences in commit order, `kvs` equal
 * to each key's last committed value, and in exactly-once mode no record twice
 * for a read_committed reader. Printed: rows, missing, order violations,
 * duplicates, and the time from the promotion to the relay streaming again.
 *
 * Postgres 14-16 (no slot sync): the promoted server has no slot, and the relay
 * must not make a new one and carry on past the gap: it stops with
 * SLOT_MISSING naming replay.
 *
 * "Committed" is what the promoted server holds: see failover-walnut.ts.
 *
 *   FAILOVER_PG_VERSION=17 node --import tsx node_modules/uvu/bin.js packages/cdc-relay/chaos 'failover\.test\.ts$'
 */
import {
  checkDelivery,
  formatReport,
  lineTime,
  type Phase,
  pause,
  readDistinctIds,
  readTopic,
  readWholeTopic,
  type TopicRecord,
  waitFor,
  walLsn,
} from '@walnut/stack';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  type FailoverWalnut,
  failoverDeliveries,
  failoverPgVersion,
  type Lane,
  startFailoverWalnut,
  stopFailoverWalnut,
  syncedOnStandby,
} from './failover-walnut.ts';

const VERSION = failoverPgVersion();
const SLOT_SYNC = VERSION >= 17;
const DELIVERIES = SLOT_SYNC ? failoverDeliveries() : (['at-least-once'] as const).slice();
const t0 = Date.now();
const log = (line: string) =>
  console.log(`  failover pg${VERSION} +${((Date.now() - t0) / 1000).toFixed(1)}s: ${line}`);

interface Ctx extends FailoverWalnut {
  /** uvu neither prints a hook's error nor fails the suite for it (it exits 0): the test throws it. */
  setupError?: unknown;
}
const failover = suite<Ctx>(`failover (Postgres ${VERSION}, ${DELIVERIES.join(' + ')})`);

failover.before(async (ctx) => {
  await startFailoverWalnut(ctx, 'failover', {
    version: VERSION,
    deliveries: DELIVERIES,
    slotSync: SLOT_SYNC,
    env: { RELAY_BACKOFF_MAX_MS: '1000', RELAY_CHECKPOINT_INTERVAL_MS: '500' },
    load: { ratePerSecond: 100, keys: 40, maxInFlight: 16 },
    log,
  }).catch((error) => {
    ctx.setupError = error;
  });
});

failover.after(async (ctx) => {
  await stopFailoverWalnut(ctx, log);
  log('stopped');
});

/** Reads every lane's witness slot on the primary (before) or the promoted server (after), once a second. */
function tailWitnesses(ctx: FailoverWalnut, server: () => 'primary' | 'standby'): () => Promise<void> {
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      for (const lane of ctx.lanes) {
        await lane.witness.drain(server() === 'primary' ? lane.primaryPool : lane.standbyPool).catch(() => {});
      }
      await pause(1_000);
    }
  })();
  return async () => {
    stopped = true;
    await loop;
  };
}

if (SLOT_SYNC) {
  failover('a SIGKILLed primary, the standby promoted: the relay goes on from its synced slot', async (ctx) => {
    if (ctx.setupError) throw ctx.setupError;
    const { lanes, standby } = ctx;
    let server: 'primary' | 'standby' = 'primary';
    const stopTail = tailWitnesses(ctx, () => server);
    for (const lane of lanes) lane.load.start();
    try {
      await waitFor('load under way', async () => lanes.every((l) => l.load.accepted >= 200), { timeoutMs: 60_000 });
      // A new failover slot is synced only once it has moved past the standby's xmin horizon; a
      // failover before that loses it. Both the relay's and the witness's must be on the standby.
      const syncStarted = Date.now();
      await waitFor(
        'the relay and witness slots synced to the standby',
        async () => {
          for (const lane of lanes) {
            if (!(await syncedOnStandby(lane, lane.walnut.slot))) return false;
            if (!(await syncedOnStandby(lane, lane.witness.slot))) return false;
          }
          return true;
        },
        { timeoutMs: 120_000, intervalMs: 250 },
      );
      log(`slots synced to the standby ${Date.now() - syncStarted} ms after the load reached 200 writes`);
      await pause(1_000 + Math.random() * 1_000);

      const phases = new Map<Lane, Phase[]>();
      for (const lane of lanes) {
        phases.set(lane, [
          { name: 'before', startLsn: 0n },
          { name: 'failover', startLsn: await walLsn(lane.primaryPool) },
        ]);
      }
      const relayFrom = new Map(lanes.map((l) => [l, l.relay.output.length]));
      const acceptedBefore = new Map(lanes.map((l) => [l, l.load.accepted]));
      const killedAt = Date.now();
      await ctx.stack.postgres.kill();
      log(`primary SIGKILLed; ${lanes.map((l) => `${l.delivery} ${l.load.accepted} writes accepted`).join(', ')}`);
      const promoteStarted = Date.now();
      await standby.promote();
      const promotedAt = Date.now();
      server = 'standby';
      log(`standby promoted in ${promotedAt - promoteStarted} ms (${promotedAt - killedAt} ms after the kill)`);

      const figures: string[] = [];
      for (const lane of lanes) {
        const streamingAt = await lineTime(
          lane.relay,
          relayFrom.get(lane) as number,
          /"state":"streaming"/,
          120_000,
        ).catch((error) => {
          throw new Error(`${lane.delivery}: ${(error as Error).message}\n${lane.relay.tail(30)}`);
        });
        figures.push(`${lane.delivery} ${streamingAt - promotedAt} ms`);
        (phases.get(lane) as Phase[]).push({ name: 'after', startLsn: await walLsn(lane.standbyPool) });
      }
      log(`promotion → relay streaming again: ${figures.join(', ')}`);
      await waitFor(
        'writes accepted again on the promoted server',
        async () => lanes.every((l) => l.load.accepted >= (acceptedBefore.get(l) as number) + 200),
        { timeoutMs: 60_000 },
      );
      for (const lane of lanes) {
        assert.ok(lane.relay.running, `${lane.delivery}: the relay was not restarted:\n${lane.relay.tail()}`);
        assert.ok(lane.api.running, `${lane.delivery}: the API was not restarted:\n${lane.api.tail()}`);
        assert.ok(lane.applier.running, `${lane.delivery}: the applier was not restarted:\n${lane.applier.tail()}`);
      }
      await pause(1_000);
      for (const lane of lanes) await lane.load.stop();
      for (const lane of lanes) {
        log(`${lane.delivery}: load stopped, ${lane.load.accepted} accepted, ${lane.load.failed} refused`);
      }
      await stopTail();
      for (const lane of lanes) await lane.witness.drain(lane.standbyPool);

      for (const lane of lanes) await checkLane(lane, phases.get(lane) as Phase[]);
    } finally {
      await stopTail();
    }
  });
} else {
  failover('without slot sync (before 17) the relay stops with SLOT_MISSING and makes no new slot', async (ctx) => {
    if (ctx.setupError) throw ctx.setupError;
    const lane = ctx.lanes[0] as Lane;
    const { walnut } = lane;
    lane.load.start();
    try {
      await waitFor('load under way', async () => lane.load.accepted >= 200, { timeoutMs: 60_000 });
      // The relay has relayed: its checkpoint is in Kafka (else a missing slot is a first start).
      await readTopic(walnut.kafka, 'walnut.relay.checkpoints', (records) => records.length > 0, 60_000);
      const relayFrom = lane.relay.output.length;
      await ctx.stack.postgres.kill();
      log(`primary SIGKILLed; ${lane.load.accepted} writes accepted`);
      await ctx.standby.promote();
      const promotedAt = Date.now();
      await waitFor('the relay to stop', async () => !lane.relay.running, { timeoutMs: 120_000 }).catch((error) => {
        throw new Error(`${(error as Error).message}\n${lane.relay.tail(30)}`);
      });
      const stoppedMs = Date.now() - promotedAt;
      assert.is(lane.relay.child.exitCode, 1, lane.relay.tail());
      const after = lane.relay.output.slice(relayFrom);
      const fatal = after.find((line) => line.includes('"level":60')) ?? '';
      assert.match(fatal, '"code":"SLOT_MISSING"', lane.relay.tail());
      assert.match(fatal, 'walnut-relay replay');
      assert.match(fatal, 'walnut-relay snapshot');
      assert.match(fatal, `walnut-relay slot create --slot ${walnut.slot}`);
      log(`the relay stopped ${stoppedMs} ms after the promotion: ${JSON.parse(fatal).err?.message ?? fatal}`);
      assert.not.ok(
        after.some((line) => /created replication slot|"state":"streaming"/.test(line)),
        'the relay neither made a new slot nor streamed after the failover',
      );
      const slots = await lane.standbyPool.query('SELECT slot_name FROM pg_replication_slots WHERE slot_type = $1', [
        'logical',
      ]);
      assert.is(slots.rowCount, 0, 'the promoted server has no logical slot: none was made behind our back');
      // The API writes on the promoted server meanwhile: the outbox keeps them for a replay.
      const before = lane.load.accepted;
      await waitFor('writes accepted on the promoted server', async () => lane.load.accepted >= before + 100, {
        timeoutMs: 60_000,
      });
    } finally {
      await lane.load.stop();
    }
  });
}

/** The lane's figures and verdict against the promoted server's outbox and the witness. */
async function checkLane(lane: Lane, phases: Phase[]): Promise<void> {
  const { walnut, delivery, standbyPool } = lane;
  const name = (line: string) => `${delivery}: ${line}`;
  const outbox = await standbyPool.query<{ id: string; key: string; value: unknown }>(
    `SELECT id::text AS id, aggregateid AS key, payload -> 'value' AS value FROM outbox`,
  );
  const committed = new Map(outbox.rows.map((r) => [r.id, r]));
  const witness = lane.witness.rows;
  assert.is(witness.length, committed.size, name('the witness saw every row of the promoted outbox'));
  for (const row of witness) assert.ok(committed.has(row.id), name(`witness row ${row.id} is in the outbox`));
  // Synchronous replication: every write the API acknowledged survived the failover.
  const requests = await standbyPool.query<{ n: number }>('SELECT count(*)::int AS n FROM requests');
  assert.ok(
    (requests.rows[0]?.n ?? 0) >= lane.load.accepted,
    name(`every accepted write survived (${requests.rows[0]?.n} requests, ${lane.load.accepted} accepted)`),
  );

  await readDistinctIds(walnut.kafka, walnut.topic, committed.size, 120_000);
  const records: TopicRecord[] = await readWholeTopic(walnut.kafka, walnut.topic);
  const report = checkDelivery(
    witness,
    phases,
    records.map((r) => ({ id: r.headers.id, key: r.key, partition: r.partition, offset: r.offset })),
  );
  log(name(`${records.length} records read\n${formatReport(report)}`));
  if (report.total.missing > 0) log(name(`missing: ${report.missingSample.join('; ')}\n${lane.relay.tail(40)}`));
  assert.is(report.foreign, 0, name('every record on the topic is a row the promoted server holds'));
  assert.is(report.total.missing, 0, name(`committed rows missing:\n${formatReport(report)}`));
  assert.is(
    report.total.firstOrderViolations,
    0,
    name(`per key, first occurrences follow commit order: ${report.orderSample.join('; ')}`),
  );
  assert.is(
    report.total.lastOrderViolations,
    0,
    name(`per key, last occurrences follow commit order: ${report.orderSample.join('; ')}`),
  );
  if (delivery === 'exactly-once') assert.is(report.total.duplicates, 0, name('exactly-once: no record twice'));

  // kvs holds, per key, the value of the last committed write.
  await waitFor(
    name('applier caught up'),
    async () => (await standbyPool.query('SELECT 1 FROM requests WHERE applied_at IS NULL LIMIT 1')).rowCount === 0,
    { timeoutMs: 120_000, intervalMs: 500 },
  );
  const expected = new Map<string, unknown>();
  for (const row of witness) {
    const r = committed.get(row.id);
    if (r) expected.set(r.key, r.value);
  }
  const kvs = await standbyPool.query<{ key: string; value: unknown }>('SELECT key, value FROM kvs');
  assert.is(kvs.rowCount, expected.size, name('kvs has every key'));
  for (const { key, value } of kvs.rows) assert.equal(value, expected.get(key), name(`kvs[${key}]`));
  log(name(`kvs matches the last committed value of all ${expected.size} keys`));
}

failover.run();
