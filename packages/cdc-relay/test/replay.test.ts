/**
 * `walnut-relay replay` beside a live relay, API and applier: a time range
 * replayed while writes go on reaches Kafka once per replay, the live stream
 * misses nothing, and the applier's version guard leaves `kvs` as the live
 * stream alone makes it. A replay killed mid-way resumes without a gap.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { RELAY_HEADERS } from '@walnut/schema';
import {
  readWholeTopic,
  startNodeScript,
  type TopicRecord,
  type WalnutFixture,
  type WalnutProcess,
  waitFor,
  waitApplied,
  walnutSuite,
  write,
} from '@walnut/stack';
import * as assert from 'uvu/assert';
import { exitCode, type KvRow, kvsIsWhatLiveRecordsMake, liveRecords, replayRecords } from './replay-checks.ts';

const replay = walnutSuite('replay', 'replay');
const workDir = mkdtempSync(path.join(os.tmpdir(), 'walnut-replay-'));

/** The relay's replay command as an operator runs it (JSON progress lines: stdout is not a TTY). */
function startReplay(walnut: WalnutFixture, args: string[]): WalnutProcess {
  return startNodeScript('replay', 'packages/cdc-relay/bin/walnut-relay.js', ['replay', ...args], walnut.env);
}

function events(run: WalnutProcess, name: string): Array<Record<string, unknown>> {
  return run.output
    .filter((line) => line.startsWith('{') && line.includes(`"event":"${name}"`))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

async function dbNow(walnut: WalnutFixture): Promise<string> {
  const r = await walnut.pool.query<{ t: string }>('SELECT clock_timestamp()::text AS t');
  return r.rows[0]?.t as string;
}

async function kvsRows(walnut: WalnutFixture): Promise<KvRow[]> {
  const r = await walnut.pool.query<KvRow>(
    'SELECT key, value, version::text AS version, updated_at::text AS updated_at FROM kvs ORDER BY key',
  );
  return r.rows;
}

/** Until the applier's group has consumed the topic to its end: every record in it was applied or refused. */
async function applierCaughtUp(walnut: WalnutFixture): Promise<void> {
  const admin = walnut.kafka.admin();
  await admin.connect();
  try {
    await waitFor(
      'applier caught up with the topic',
      async () => {
        const ends = await admin.fetchTopicOffsets(walnut.topic);
        const [group] = await admin.fetchOffsets({
          groupId: walnut.env.APPLIER_GROUP_ID as string,
          topics: [walnut.topic],
        });
        const committed = new Map(group?.partitions.map((p) => [p.partition, BigInt(p.offset)]) ?? []);
        return ends.every((e) => (committed.get(e.partition) ?? -1n) >= BigInt(e.high));
      },
      { timeoutMs: 60_000, intervalMs: 250 },
    );
  } finally {
    await admin.disconnect();
  }
}

/** Writes through the API from a few workers until stopped; every write must be accepted. */
function apiWriter(api: string, keys: number) {
  let running = true;
  let n = 0;
  const workers = Array.from({ length: 4 }, async () => {
    while (running) {
      const i = n++;
      await write(api, 'PUT', `/kv/k${i % keys}`, { value: { i } });
    }
  });
  return {
    get written() {
      return n;
    },
    async stop() {
      running = false;
      await Promise.all(workers);
    },
  };
}

replay('a time range replayed during writes: once per replay, live stream whole, kvs unchanged', async ({ walnut }) => {
  await walnut.startRelay();
  const { url: api } = await walnut.startApi();
  await walnut.startApplier();
  const writer = apiWriter(api, 40);

  await waitFor('some writes', async () => writer.written >= 200, { timeoutMs: 60_000 });
  const since = await dbNow(walnut);
  await waitFor('the range filled', async () => writer.written >= 1_200, { timeoutMs: 60_000 });
  const until = await dbNow(walnut);

  const file = path.join(workDir, 'range.json');
  const run = startReplay(walnut, [
    '--since',
    since,
    '--until',
    until,
    '--replay-id',
    'range-1',
    '--progress-file',
    file,
    '--page-size',
    '100',
  ]);
  const writtenAtStart = writer.written;
  assert.is(await exitCode(run), 0, run.tail());
  assert.ok(writer.written > writtenAtStart, 'writes went on while the replay ran');
  await waitFor('more writes after the replay', async () => writer.written >= writtenAtStart + 300, {
    timeoutMs: 60_000,
  });
  await writer.stop();

  const selected = await walnut.pool.query<{ id: string }>(
    'SELECT id::text FROM outbox WHERE created_at >= $1 AND created_at < $2',
    [since, until],
  );
  assert.ok(selected.rowCount && selected.rowCount > 500, `range holds ${selected.rowCount} rows`);
  // Walnut's outbox has an index on (created_at, id): pages follow it.
  assert.equal(events(run, 'replay.start')[0]?.order, ['created_at', 'id']);
  const done = events(run, 'replay.done')[0];
  assert.is(done?.rows, selected.rowCount, 'the replay counted the range');

  await applierCaughtUp(walnut);
  const records = await readWholeTopic(walnut.kafka, walnut.topic);
  const replayed = replayRecords(records, 'range-1');
  assert.equal(
    [...replayed.keys()].sort(),
    selected.rows.map((r) => r.id).sort(),
    'the replay sent exactly the selected rows',
  );
  assert.ok(
    [...replayed.values()].every((n) => n === 1),
    'each once',
  );
  assert.ok(
    records
      .filter((r) => r.headers[RELAY_HEADERS.replay] === 'range-1')
      .every((r) => r.headers[RELAY_HEADERS.commitLsn] === '0/0' && r.headers.type === 'kv.set'),
    'replayed records: unknown commit LSN (0/0), the live mapping headers',
  );

  const outbox = await walnut.pool.query<{ id: string }>('SELECT id::text FROM outbox');
  const live = liveRecords(records);
  const missing = outbox.rows.filter((r) => !live.has(r.id));
  assert.is(missing.length, 0, `live stream missed ${missing.length} of ${outbox.rowCount} rows`);

  // The applier applied both streams; kvs must be what the live records alone make.
  kvsIsWhatLiveRecordsMake(await kvsRows(walnut), records);
});

replay('a replay of everything after the applier caught up changes no kvs row', async ({ walnut }) => {
  const before = await kvsRows(walnut);
  assert.ok(before.length === 40, `kvs holds ${before.length} keys`);
  const run = startReplay(walnut, ['--all', '--replay-id', 'all-1', '--progress-file', path.join(workDir, 'all.json')]);
  assert.is(await exitCode(run), 0, run.tail());
  await applierCaughtUp(walnut);
  const records = await readWholeTopic(walnut.kafka, walnut.topic);
  const outbox = await walnut.pool.query('SELECT 1 FROM outbox');
  assert.is(replayRecords(records, 'all-1').size, outbox.rowCount, 'every row replayed');
  // updated_at included: a guarded upsert that loses does not touch the row.
  assert.equal(await kvsRows(walnut), before, 'kvs unchanged, row for row');
});

replay(
  'a key kvs lost is refilled by a replay with its newest replayed value, and a live write still wins',
  async ({ walnut }) => {
    const { url: api } = await walnut.startApi();
    let last = '';
    // One after another: creation order is commit order.
    for (let n = 1; n <= 5; n++) last = await write(api, 'PUT', '/kv/lost-key', { value: { n } });
    await waitApplied(api, last);
    const held = await walnut.pool.query('DELETE FROM kvs WHERE key = $1 RETURNING value', ['lost-key']);
    assert.equal(held.rows[0]?.value, { n: 5 });

    const run = startReplay(walnut, [
      '--aggregate-id',
      'lost-key',
      '--replay-id',
      'refill-1',
      '--progress-file',
      path.join(workDir, 'refill.json'),
    ]);
    assert.is(await exitCode(run), 0, run.tail());
    assert.is(events(run, 'replay.done')[0]?.rows, 5);
    await applierCaughtUp(walnut);
    const refilled = await walnut.pool.query<{ value: unknown; version: string }>(
      'SELECT value, version::text FROM kvs WHERE key = $1',
      ['lost-key'],
    );
    assert.equal(refilled.rows[0]?.value, { n: 5 }, 'the newest of the replayed versions');
    assert.ok(BigInt(refilled.rows[0]?.version ?? '-1') < 2n ** 32n, 'versioned below every relayed event');

    await waitApplied(api, await write(api, 'PUT', '/kv/lost-key', { value: { n: 6 } }));
    const after = await walnut.pool.query('SELECT value FROM kvs WHERE key = $1', ['lost-key']);
    assert.equal(after.rows[0]?.value, { n: 6 }, 'the next relayed write overrides it');
  },
);

replay('a replay killed mid-way resumes after its last acked page, without a gap', async ({ walnut }) => {
  const rows = 20_000;
  await walnut.pool.query(
    `INSERT INTO outbox (id, aggregatetype, aggregateid, type, payload)
     SELECT gen_random_uuid(), 'bulk', 'b' || (g % 500), 'bulk.made', jsonb_build_object('g', g)
       FROM generate_series(1, $1) g`,
    [rows],
  );
  const file = path.join(workDir, 'resume.json');
  const target = `${walnut.topic}.replayed`;
  const args = ['--aggregate-type', 'bulk', '--to-topic', target, '--progress-file', file, '--page-size', '100'];
  const first = startReplay(walnut, [...args, '--replay-id', 'resume-1']);
  await first.waitForLine(/"event":"replay.progress".*"rows":(\d{4,})/);
  assert.is(await first.stop('SIGKILL'), null, 'killed');
  const saved = JSON.parse(readFileSync(file, 'utf8')) as {
    rowsDone: number;
    cursor: string[] | null;
    finishedAt: null;
  };
  assert.ok(saved.rowsDone >= 1_000 && saved.rowsDone < rows, `killed after ${saved.rowsDone} of ${rows} rows`);
  assert.ok(saved.cursor, 'a cursor was saved');
  assert.is(saved.finishedAt, null);

  const refused = startReplay(walnut, [...args, '--replay-id', 'resume-2']);
  assert.is(await exitCode(refused), 2, 'a new replay over an unfinished one is refused');
  assert.ok(
    refused.output.some((line) => line.includes('--resume')),
    refused.tail(),
  );

  const resumed = startReplay(walnut, ['--resume', '--progress-file', file]);
  assert.is(await exitCode(resumed), 0, resumed.tail());
  const start = events(resumed, 'replay.start')[0];
  assert.is(start?.rowsDone, saved.rowsDone, 'resumed from the saved page');
  assert.is(events(resumed, 'replay.done')[0]?.rows, rows);

  const records: TopicRecord[] = await readWholeTopic(walnut.kafka, target);
  const bulk = await walnut.pool.query<{ id: string }>(`SELECT id::text FROM outbox WHERE aggregatetype = 'bulk'`);
  const seen = replayRecords(records, 'resume-1');
  const missing = bulk.rows.filter((r) => !seen.has(r.id));
  assert.is(missing.length, 0, `${missing.length} rows never replayed`);
  const duplicates = records.length - seen.size;
  // Committed but not yet saved when killed: at most one transaction (4 pages of 100).
  assert.ok(duplicates <= 400, `${duplicates} records sent twice`);
  assert.is(records.length, rows + duplicates);
});

replay(
  'a selection that is missing or does not fit the columns is refused (exit 2), and sends nothing',
  async ({ walnut }) => {
    const file = path.join(workDir, 'refused.json');
    const cases: Array<[string[], RegExp]> = [
      [[], /--all/],
      [['--since', 'yesterday-ish'], /does not fit/],
      [['--from-id', 'not-a-uuid'], /does not fit/],
      [['--page-size', '0'], /--page-size/],
    ];
    for (const [args, message] of cases) {
      const run = startReplay(walnut, [...args, '--progress-file', file, '--replay-id', 'refused']);
      assert.is(await exitCode(run), 2, `${args.join(' ')}: ${run.tail()}`);
      assert.ok(
        run.output.some((line) => message.test(line)),
        `${args.join(' ')}: ${run.tail()}`,
      );
    }
    const records = await readWholeTopic(walnut.kafka, walnut.topic);
    assert.is(replayRecords(records, 'refused').size, 0);
  },
);

replay.run();
