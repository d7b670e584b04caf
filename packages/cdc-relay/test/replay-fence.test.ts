/**
 * A resumed replay fences the run it took over. The first run is frozen
 * (SIGSTOP) mid-way, alive, with a Kafka transaction open; `replay --resume`
 * runs to the end; then the first one thaws. Its next send or commit must be
 * refused, so it stops with REPLAY_FENCED instead of publishing the rest of
 * its range a second time, and what it had left open is aborted: a
 * read_committed consumer sees every row, and at most one transaction twice.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  exitCode,
  insertOutboxRows,
  killAfterEach,
  readWholeTopic,
  startRelayCli,
  type WalnutFixture,
  type WalnutProcess,
  walnutSuite,
} from '@walnut/stack';
import * as assert from 'uvu/assert';
import { replayRecords } from './replay-checks.ts';

const fence = walnutSuite('replay fence', 'replay_fence');
const workDir = mkdtempSync(path.join(os.tmpdir(), 'walnut-replay-fence-'));

/** Every replay a test started, killed after it whatever it asserted. */
const killAfterTest = killAfterEach(fence);

function startReplay(walnut: WalnutFixture, args: string[]): WalnutProcess {
  return killAfterTest(startRelayCli('replay', ['replay', ...args], walnut.env));
}

fence(
  'a replay frozen mid-way is fenced by its --resume: it stops with REPLAY_FENCED, publishing nothing more',
  async ({ walnut }) => {
    const rows = 20_000;
    const pageSize = 100;
    await insertOutboxRows(walnut.pool, rows, {
      aggregateType: 'fence',
      type: 'fence.made',
      keyPrefix: 'f',
      keys: 500,
    });
    const file = path.join(workDir, 'fence.json');
    const target = `${walnut.topic}.fenced`;
    const first = startReplay(walnut, [
      '--aggregate-type',
      'fence',
      '--to-topic',
      target,
      '--progress-file',
      file,
      '--page-size',
      String(pageSize),
      '--replay-id',
      'fence-1',
    ]);
    await first.waitForLine(/"event":"replay.progress".*"rows":(\d{4,})/);
    first.child.kill('SIGSTOP');
    try {
      const saved = JSON.parse(readFileSync(file, 'utf8')) as { rowsDone: number };
      assert.ok(saved.rowsDone < rows / 2, `frozen after ${saved.rowsDone} of ${rows} rows: most of the range to go`);

      const resumed = startReplay(walnut, ['--resume', '--progress-file', file]);
      assert.is(await exitCode(resumed), 0, resumed.tail());
      first.child.kill('SIGCONT');
      assert.is(await exitCode(first), 1, `the thawed run must fail, not finish its range: ${first.tail()}`);
      assert.ok(
        first.output.some((line) => line.includes('REPLAY_FENCED')),
        first.tail(),
      );
      assert.not.ok(
        first.output.some((line) => line.includes('"event":"replay.done"')),
        'the thawed run never finished',
      );
    } finally {
      first.child.kill('SIGCONT');
      await first.stop('SIGKILL');
    }

    // readWholeTopic reads committed records only.
    const records = await readWholeTopic(walnut.kafka, target);
    const bulk = await walnut.pool.query<{ id: string }>(`SELECT id::text FROM outbox WHERE aggregatetype = 'fence'`);
    const seen = replayRecords(records, 'fence-1');
    const missing = bulk.rows.filter((r) => !seen.has(r.id));
    assert.is(missing.length, 0, `${missing.length} rows never replayed`);
    const twice = records.length - seen.size;
    console.log(
      `replay fence: ${records.length} committed records for ${rows} rows (${twice} twice); the thawed run: ${first.output.find((line) => line.includes('REPLAY_FENCED'))}`,
    );
    // At most the transaction (4 pages) the first run committed after its last save; the rest of
    // what it sent before and after the freeze was aborted by the fence.
    assert.ok(twice <= 4 * pageSize, `${twice} records committed twice`);
  },
);

fence.run();
