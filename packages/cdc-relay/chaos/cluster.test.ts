/**
 * The relay's promise on a real 3-broker Kafka (KRaft, replication factor 3,
 * min.insync.replicas 2) while partition leaders move under a steady outbox
 * load: a leader is SIGKILLed, shut down cleanly, every broker restarts in
 * turn, leaders are moved by elections and reassignment, and a leader is
 * frozen (SIGSTOP) for longer than the relay's send timeout. Then an
 * independent reader takes every committed record of the topic, and a
 * test_decoding slot created before any write says what committed and in
 * which order: nothing committed may be missing, per key both the first and
 * the last occurrence of every row follow commit order, and the applier
 * (consuming through all of it) leaves kvs at each key's last committed value. Figures are printed per fault phase; a row counts
 * for the phase its transaction committed in, so the relay may send it (and
 * lose it) a moment later, in the next phase.
 *
 * It pins two failures of the relay on kafkajs 2.2.4:
 * - loss: a sendBatch that resolved although some of its records never reached
 *   the topic (https://github.com/tulios/kafkajs/pull/1798: broker B answers
 *   NOT_LEADER for partition p, p's new leader A already answered in the same
 *   call, so the retry sends nothing for p); the relay then confirms the LSN.
 * - zombie sends: a sendBatch the relay gave up on (RELAY_KAFKA_SEND_TIMEOUT_MS)
 *   that kafkajs keeps retrying after the relay replayed those rows with a new
 *   producer, landing old rows after newer ones.
 *
 * `pnpm run test:chaos` runs it with the single-broker suite; alone:
 *   node --import tsx node_modules/uvu/bin.js packages/cdc-relay/chaos 'cluster\.test\.ts$'
 */
import {
  checkDelivery,
  formatReport,
  httpUrl,
  type KafkaCluster,
  type Phase,
  pause,
  readWholeTopic,
  type WalnutProcess,
  waitConfirmed,
  waitFor,
  walLsn,
} from '@walnut/stack';
import pg from 'pg';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { LeaderFaults } from './cluster-faults.ts';
import { OutboxLoad } from './outbox-load.ts';
import { chaosDelivery, type PrivateWalnut, startPrivateWalnut, stopPrivateWalnut } from './private-walnut.ts';
import { RelayWatch } from './relay-watch.ts';
import { committedRows } from './witness.ts';

interface Ctx extends PrivateWalnut {
  cluster: KafkaCluster;
  relay: WalnutProcess;
  applier: WalnutProcess;
  loadPool: pg.Pool;
}

const PARTITIONS = 6;
/** Short, so that phase 5's freeze outlasts it and the relay abandons a send that kafkajs keeps retrying. */
const SEND_TIMEOUT_MS = 5_000;
const FREEZE_MS = 10_000;
/** Leader moves of partition 0 by reassignment in phase 4: each one can lose a batch's rows. */
const LEADER_MOVES = 12;
/** A freeze gives a late zombie send about two times in three (measured): four make a miss unlikely. */
const FREEZES = 4;
/** Phase 6: the relay's send timeout, and a freeze between it and broker.session.timeout.ms (4 s). */
const SHORT_SEND_TIMEOUT_MS = 1_500;
const SHORT_FREEZE_MS = 3_000;
/**
 * Small requests, so that whenever a backlog forms (every fault makes one) the relay has
 * several full requests in flight at once, up to its default of five: the order of acks
 * across requests and a failure behind a request in flight are then what is under test.
 */
const MAX_BATCH_RECORDS = 8;
/**
 * Exactly-once sends one Kafka transaction at a time, a few round trips each: with
 * 8 records apiece it could not keep up with the load (about 250 records/s here).
 */
const EXACTLY_ONCE_BATCH_RECORDS = 500;

const DELIVERY = chaosDelivery();
const clusterFaults = suite<Ctx>(`cluster faults (${DELIVERY})`);
let started = Date.now();
const log = (line: string) =>
  console.log(`  cluster ${DELIVERY} [${((Date.now() - started) / 1000).toFixed(0)}s]: ${line}`);

clusterFaults.before(async (ctx) => {
  started = Date.now();
  await startPrivateWalnut(ctx, 'cluster', {
    kafkaNodes: 3,
    log: (line) => log(`stack: ${line}`),
    env: {
      RELAY_KAFKA_SEND_TIMEOUT_MS: String(SEND_TIMEOUT_MS),
      RELAY_BACKOFF_MAX_MS: '2000',
      RELAY_MAX_BATCH_RECORDS: String(DELIVERY === 'exactly-once' ? EXACTLY_ONCE_BATCH_RECORDS : MAX_BATCH_RECORDS),
    },
  });
  if (!ctx.stack.kafkaCluster) throw new Error('startStack({ kafkaNodes: 3 }) gave no cluster');
  ctx.cluster = ctx.stack.kafkaCluster;
  log(`3-node cluster up on ${ctx.stack.kafkaBrokers.join(', ')}`);
  const admin = ctx.walnut.kafka.admin();
  await admin.connect();
  try {
    await admin.createTopics({
      topics: [
        {
          topic: ctx.walnut.topic,
          numPartitions: PARTITIONS,
          replicationFactor: 3,
          configEntries: [{ name: 'min.insync.replicas', value: '2' }],
        },
      ],
      waitForLeaders: true,
    });
  } finally {
    await admin.disconnect();
  }
  await ctx.cluster.waitInSync(ctx.walnut.topic);
  ctx.loadPool = new pg.Pool({ connectionString: ctx.walnut.databaseUrl, max: 8 });
  ctx.loadPool.on('error', () => {});
  ctx.relay = await ctx.walnut.startRelay();
  ctx.applier = await ctx.walnut.startApplier();
});

clusterFaults.after(async (ctx) => {
  await ctx.loadPool?.end().catch(() => {});
  await stopPrivateWalnut(ctx, log);
});

clusterFaults('nothing committed is lost or reordered while partition leaders move', async (ctx) => {
  const { walnut, cluster } = ctx;
  const topic = walnut.topic;
  const watch = new RelayWatch(ctx.relay);
  const load = new OutboxLoad(ctx.loadPool, { ratePerSecond: 200, keys: 300, maxInFlight: 16 });
  const phases: Phase[] = [];
  const faults = new LeaderFaults(cluster, topic, log);

  /** Runs one named fault under the load; rows committed from now on count for it. */
  const phase = async (name: string, fault: () => Promise<void>) => {
    phases.push({ name, startLsn: await walLsn(walnut.pool) });
    watch.mark(name);
    const t0 = Date.now();
    await fault();
    await pause(2_000);
    if (!ctx.relay.running) {
      log(`relay exited during ${name}:\n${ctx.relay.tail(20)}`);
      ctx.relay = await walnut.startRelay();
      watch.follow(ctx.relay, name);
    }
    const took = ((Date.now() - t0) / 1000).toFixed(1);
    log(`${name}: ${took} s, ${watch.summary(name)}; partition 0 led by ${await faults.leader()}`);
  };

  phases.push({ name: 'warm-up', startLsn: 0n });
  load.start();
  await waitFor('load under way', async () => load.committedRows >= 1_000, { timeoutMs: 30_000 });

  await phase('1 kill-leader', () => faults.crash('kill'));
  await phase('2 stop-leader', () => faults.crash('stop'));
  await phase('3 rolling-restart', () => faults.rollingRestart());
  await phase('4 leader-moves', () => faults.move(LEADER_MOVES));
  // Repeated: a zombie send lands late only when its retry reaches a broker that had
  // not answered the abandoned request, which not every freeze gives.
  for (let i = 1; i <= FREEZES; i++) await phase(`5 freeze-leader#${i}`, () => faults.freeze(FREEZE_MS));
  // Shorter than the brokers' session timeout (4 s), so the frozen broker stays the leader,
  // and longer than the relay's send timeout, so the relay gives up on a request that then
  // sits in the broker's socket buffer while a new session sends the same rows again on
  // another connection. At the thaw the broker takes both in either order: only the new
  // session's epoch (fencing) keeps the old request from landing after the new one.
  const pipelined = await requestsByInFlight(ctx.relay);
  watch.retire(ctx.relay);
  await ctx.relay.stop('SIGTERM');
  ctx.relay = await walnut.startRelay({ RELAY_KAFKA_SEND_TIMEOUT_MS: String(SHORT_SEND_TIMEOUT_MS) });
  watch.follow(ctx.relay, 'restart for phase 6');
  for (let i = 1; i <= FREEZES; i++) await phase(`6 short-freeze#${i}`, () => faults.freeze(SHORT_FREEZE_MS));
  await phase('settle', () => pause(3_000).then(() => {}));
  await load.stop();
  log(`load stopped: ${load.committedTx} transactions (${load.committedRows} rows) committed, ${load.failed} failed`);

  // Drained: the relay confirmed everything up to the end of the load.
  const endLsn = await walLsn(walnut.pool);
  await waitConfirmed(walnut.pool, walnut.slot, endLsn, {
    what: 'the relay to confirm the end of the load',
    timeoutMs: 120_000,
    intervalMs: 500,
  }).catch((error: Error) =>
    log(`${error.message}; checking what reached the topic anyway. The relay's last lines:\n${ctx.relay.tail(40)}`),
  );

  for (const [inFlight, count] of await requestsByInFlight(ctx.relay)) {
    pipelined.set(inFlight, (pipelined.get(inFlight) ?? 0) + count);
  }
  const sorted = [...pipelined].sort(([a], [b]) => a - b);
  log(`produce requests by requests in flight once sent: ${sorted.map(([n, c]) => `${n}: ${c}`).join(', ')}`);

  const witness = await committedRows(walnut.pool, ctx.oracle);
  // More only if a client gave up on an INSERT that then committed.
  assert.ok(witness.length >= load.committedRows, 'the witness saw every committed row');
  const records = await readWholeTopic(walnut.kafka, topic);
  const report = checkDelivery(
    witness,
    phases,
    records.map((r) => ({ id: r.headers.id, key: r.key, partition: r.partition, offset: r.offset })),
  );
  log(`${records.length} records read from ${topic}\n${formatReport(report)}`);
  if (report.total.missing > 0) log(`missing, e.g.:\n    ${report.missingSample.join('\n    ')}`);
  if (report.orderSample.length > 0) log(`out of commit order, e.g.:\n    ${report.orderSample.join('\n    ')}`);

  assert.is(watch.exits, 0, 'the relay never exited');
  // Exactly-once sends one transaction at a time: there is nothing to pipeline.
  if (DELIVERY === 'at-least-once') {
    assert.ok(
      sorted.some(([inFlight, count]) => inFlight > 1 && count > 0),
      'requests were pipelined (else the suite did not test it)',
    );
  }
  assert.is(report.foreign, 0, 'every record on the topic is a committed row');
  assert.is(report.total.missing, 0, `committed rows missing from the topic:\n${formatReport(report)}`);
  assert.is(report.total.firstOrderViolations, 0, 'per key, first occurrences follow commit order');
  assert.is(report.total.lastOrderViolations, 0, 'per key, last occurrences follow commit order');
  if (DELIVERY === 'exactly-once') assert.is(report.total.duplicates, 0, 'exactly-once: no record twice');

  // kvs: each key's last committed value, once the applier has caught up.
  const values = await walnut.pool.query<{ id: string; value: unknown }>(
    `SELECT id::text AS id, payload -> 'value' AS value FROM outbox`,
  );
  const valueById = new Map(values.rows.map((r) => [r.id, r.value]));
  const expected = new Map<string, unknown>();
  for (const row of witness) expected.set(row.key, valueById.get(row.id));
  const mismatches = async () => {
    const kvs = await walnut.pool.query<{ key: string; value: unknown }>('SELECT key, value FROM kvs');
    const actual = new Map(kvs.rows.map((r) => [r.key, r.value]));
    return [...expected].filter(([key, value]) => JSON.stringify(actual.get(key)) !== JSON.stringify(value));
  };
  await waitFor("kvs to hold every key's last committed value", async () => (await mismatches()).length === 0, {
    timeoutMs: 180_000,
    intervalMs: 1_000,
  }).catch(async (error: Error) => {
    const wrong = await mismatches();
    throw new Error(
      `${error.message}: ${wrong.length} keys differ, e.g. ${JSON.stringify(wrong.slice(0, 3))}\n${ctx.applier.tail(10)}`,
    );
  });
  log(`kvs holds the last committed value of all ${expected.size} keys`);
});

/** The relay's walnut_relay_produce_requests_total, by its in_flight label. */
async function requestsByInFlight(relay: WalnutProcess): Promise<Map<number, number>> {
  const metrics = await (await fetch(`${await httpUrl(relay)}/metrics`)).text();
  const counts = new Map<number, number>();
  for (const [, inFlight, count] of metrics.matchAll(
    /^walnut_relay_produce_requests_total\{in_flight="(\d+)"\} (\d+)/gm,
  )) {
    counts.set(Number(inFlight), Number(count));
  }
  return counts;
}

clusterFaults.run();
