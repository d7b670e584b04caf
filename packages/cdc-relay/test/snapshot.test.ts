/**
 * `walnut-relay snapshot`: an app adopts Walnut with 100,000 rows (SNAPSHOT_ROWS) already in
 * its outbox, committed before any slot existed, and keeps writing while the
 * snapshot runs. Every row reaches Kafka exactly once: the old ones from the
 * slot's exported snapshot, the rest streamed from its consistent point.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { eventVersion, parseLsn, RELAY_HEADERS } from '@walnut/schema';
import { countDelivery, exitCode, startRelayCli, waitFor, waitWholeTopic, walnutSuite } from '@walnut/stack';
import * as assert from 'uvu/assert';
import { liveRecords } from './replay-checks.ts';

const snapshot = walnutSuite('snapshot', 'snapshot');
/** SNAPSHOT_ROWS: the compatibility matrix (pnpm test:compat) takes fewer, at least 20,000 for the resume case. */
const PREEXISTING = Math.max(20_000, Number(process.env.SNAPSHOT_ROWS || 100_000));

snapshot(`${PREEXISTING} pre-existing rows plus concurrent writes: 0 missing, 0 twice`, async ({ walnut }) => {
  const preexisting = PREEXISTING;
  await walnut.pool.query(
    `INSERT INTO outbox (id, aggregatetype, aggregateid, type, payload)
     SELECT gen_random_uuid(), 'kv', 'k' || (g % 1000), 'kv.set',
            jsonb_build_object('op', 'set', 'key', 'k' || (g % 1000), 'value', g, 'request_id', gen_random_uuid())
       FROM generate_series(1, $1) g`,
    [preexisting],
  );
  const slots = await walnut.pool.query('SELECT 1 FROM pg_replication_slots WHERE slot_name = $1', [walnut.slot]);
  assert.is(slots.rowCount, 0, 'no slot yet: the relay never saw these rows');

  // The app keeps writing, in small transactions, before, during and after the slot appears.
  let writing = true;
  const written: string[] = [];
  const writer = (async () => {
    while (writing) {
      const ids = Array.from({ length: 5 }, () => randomUUID());
      await walnut.pool.query(
        `INSERT INTO outbox (id, aggregatetype, aggregateid, type, payload)
         SELECT id, 'kv', 'w' || (ord % 7), 'kv.set',
                jsonb_build_object('op', 'set', 'key', 'w' || (ord % 7), 'value', ord, 'request_id', id)
           FROM unnest($1::uuid[]) WITH ORDINALITY AS t(id, ord)`,
        [ids],
      );
      written.push(...ids);
    }
  })();
  await waitFor('the app writing', async () => written.length >= 200);

  const progressFile = path.join(mkdtempSync(path.join(os.tmpdir(), 'walnut-snapshot-')), 'snapshot.json');
  const relay = startRelayCli('snapshot', ['snapshot', '--progress-file', progressFile], walnut.relayEnv);
  const started = JSON.parse(await relay.waitForLine(/"event":"replay.start"/, 120_000)) as { order: string[] };
  assert.equal(started.order, ['created_at', 'id'], 'pages in creation order over the outbox index');
  await relay.waitForLine(/"event":"replay.done"/, 120_000);
  await relay.waitForLine(/"state":"streaming"/);
  const writtenAtDone = written.length;
  await waitFor('writes streamed after the snapshot', async () => written.length >= writtenAtDone + 500, {
    timeoutMs: 60_000,
  });
  writing = false;
  await writer;

  const state = JSON.parse(readFileSync(progressFile, 'utf8')) as { consistentPoint: string; replayId: string };
  const outbox = await walnut.pool.query<{ id: string }>('SELECT id::text FROM outbox');
  assert.is(outbox.rowCount, preexisting + written.length);
  const records = await waitWholeTopic(
    'every row in Kafka',
    walnut.kafka,
    walnut.topic,
    (all) => all.length >= outbox.rows.length,
    { timeoutMs: 180_000, intervalMs: 2_000 },
  );

  const snapshotted = records.filter((r) => r.headers[RELAY_HEADERS.replay] === state.replayId);
  const streamed = liveRecords(records);
  const { counts, missing } = countDelivery(
    outbox.rows.map((r) => r.id),
    records.map((r) => r.headers[RELAY_HEADERS.eventId]),
  );
  const twice = [...counts.values()].filter((n) => n > 1).length;
  console.log(
    `snapshot: ${snapshotted.length} rows from the exported snapshot, ${streamed.size} streamed, ${written.length} written concurrently, consistent point ${state.consistentPoint}`,
  );
  assert.is(missing.length, 0, `${missing.length} rows missing`);
  assert.is(twice, 0, `${twice} rows sent twice`);
  assert.ok(snapshotted.length >= preexisting, 'the pre-existing rows came from the snapshot');

  // Positioned before every streamed record: an applier's version guard puts them first.
  const consistent = parseLsn(state.consistentPoint);
  let newestSnapshot = 0n;
  for (const r of snapshotted) {
    const v = eventVersion(r.headers[RELAY_HEADERS.commitLsn] as string, Number(r.headers[RELAY_HEADERS.seq]));
    if (v > newestSnapshot) newestSnapshot = v;
  }
  const oldestStreamed = records
    .filter((r) => r.headers[RELAY_HEADERS.replay] === undefined)
    .reduce(
      (min, r) => {
        const lsn = parseLsn(r.headers[RELAY_HEADERS.commitLsn] as string);
        assert.ok(lsn >= consistent, 'streamed transactions commit at or after the consistent point');
        const v = eventVersion(r.headers[RELAY_HEADERS.commitLsn] as string, Number(r.headers[RELAY_HEADERS.seq]));
        return min === null || v < min ? v : min;
      },
      null as bigint | null,
    );
  assert.ok(oldestStreamed !== null && newestSnapshot < oldestStreamed, 'snapshot records order before streamed ones');
  assert.is(await relay.stop('SIGTERM'), 0, 'streams on as the relay, and stops like it');
});

snapshot('refuses a slot that already exists', async ({ walnut }) => {
  const run = startRelayCli(
    'snapshot',
    ['snapshot', '--progress-file', path.join(os.tmpdir(), `walnut-snapshot-${randomUUID()}.json`)],
    walnut.relayEnv,
  );
  assert.is(await exitCode(run, 60_000), 2, run.tail());
  assert.ok(
    run.output.some((line) => line.includes('already exists')),
    run.tail(),
  );
});

snapshot('a snapshot killed mid-way resumes from its last acked page, then streams: 0 missing', async ({ walnut }) => {
  // A second slot and topic over the same outbox, which now holds the rows of the test above.
  const slot = `${walnut.slot}_resume`;
  const topicPrefix = walnut.topic.replace(/\.kv$/, '.resume');
  const env = { ...walnut.relayEnv, RELAY_SLOT: slot, RELAY_TOPIC_TEMPLATE: `${topicPrefix}.{aggregatetype}` };
  const progressFile = path.join(mkdtempSync(path.join(os.tmpdir(), 'walnut-snapshot-')), 'snapshot.json');
  const args = ['snapshot', '--progress-file', progressFile, '--page-size', '200'];
  const first = startRelayCli('snapshot', args, env);
  await first.waitForLine(/"event":"replay.progress".*"rows":(\d{5,})/, 120_000);
  assert.is(await first.stop('SIGKILL'), null, 'killed');
  const saved = JSON.parse(readFileSync(progressFile, 'utf8')) as { rowsDone: number; replayId: string };
  const total = (await walnut.pool.query('SELECT 1 FROM outbox')).rowCount as number;
  assert.ok(saved.rowsDone >= 10_000 && saved.rowsDone < total, `killed after ${saved.rowsDone} of ${total} rows`);

  // Written between the kill and the resume: after the consistent point, so streamed.
  await walnut.pool.query(
    `INSERT INTO outbox (id, aggregatetype, aggregateid, type, payload)
     SELECT gen_random_uuid(), 'kv', 'late', 'kv.set', jsonb_build_object('op', 'set', 'key', 'late', 'value', g, 'request_id', gen_random_uuid())
       FROM generate_series(1, 300) g`,
  );
  const resumed = startRelayCli('snapshot', [...args, '--resume'], env);
  try {
    await resumed.waitForLine(/"event":"replay.done"/, 120_000);
    await resumed.waitForLine(/"state":"streaming"/);
    const outbox = await walnut.pool.query<{ id: string }>('SELECT id::text FROM outbox');
    const records = await waitWholeTopic(
      'every row in Kafka',
      walnut.kafka,
      `${topicPrefix}.kv`,
      (all) => all.length >= outbox.rows.length,
      { timeoutMs: 180_000, intervalMs: 2_000 },
    );
    const { missing, duplicates } = countDelivery(
      outbox.rows.map((r) => r.id),
      records.map((r) => r.headers[RELAY_HEADERS.eventId]),
    );
    assert.is(missing.length, 0, `${missing.length} rows missing`);
    // Twice: the pages in flight at the kill, and the late rows (streamed, and read by the resumed snapshot).
    assert.ok(duplicates <= 4 * 200 + 300, `${duplicates} sent twice`);
    assert.ok(
      records.every(
        (r) => r.headers[RELAY_HEADERS.replay] === undefined || r.headers[RELAY_HEADERS.replay] === saved.replayId,
      ),
      'the resumed run keeps the snapshot id',
    );
  } finally {
    await resumed.stop('SIGTERM');
    await walnut.pool.query('SELECT pg_drop_replication_slot($1)', [slot]);
  }
});

snapshot.run();
