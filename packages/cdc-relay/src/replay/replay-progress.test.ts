import { mkdtempSync, readdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { headersAsText } from '../kafka-record.ts';
import { outboxRowMapper } from '../outbox-mapping.ts';
import { BufferRow } from '../row-values.ts';
import { ProgressReport, type ReplayState, readReplayState, writeReplayState } from './replay-progress.ts';
import { replayPosition, snapshotPosition } from './republish.ts';

const state: ReplayState = {
  version: 1,
  kind: 'replay',
  replayId: 'r1',
  selection: { since: '2026-01-01' },
  order: ['created_at', 'id'],
  cursor: ['2026-01-01 10:00:00.123456+00', 'e1'],
  rowsDone: 1000,
  startedAt: '2026-01-01T11:00:00.000Z',
  finishedAt: null,
};

test('progress survives a round trip through its file, leaving no temporary file', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'walnut-progress-'));
  const file = path.join(dir, 'p.json');
  assert.is(readReplayState(file), undefined);
  writeReplayState(file, state);
  assert.equal(readReplayState(file), state);
  assert.equal(readdirSync(dir), ['p.json']);
});

test('off a terminal: a JSON line per acked page with rows/s and ETA, then a done line', () => {
  const lines: string[] = [];
  const report = new ProgressReport('r1', 100, 1100, false, (line) => lines.push(line));
  report.start({ kind: 'replay' });
  report.acked(600, ['c']);
  report.done(1100);
  const [start, progress, done] = lines.map((l) => JSON.parse(l));
  assert.equal(start, { event: 'replay.start', replay: 'r1', total: 1100, kind: 'replay' });
  assert.is(progress.event, 'replay.progress');
  assert.is(progress.rows, 600);
  assert.is(progress.total, 1100);
  assert.equal(progress.cursor, ['c']);
  assert.ok(progress.rowsPerSecond > 0);
  assert.is(progress.etaSeconds, Math.ceil(500 / progress.rowsPerSecond));
  assert.is(done.event, 'replay.done');
  assert.is(done.rows, 1100);
  assert.ok(lines.every((l) => l.endsWith('\n')));
});

test('on a terminal: one line redrawn in place', () => {
  const lines: string[] = [];
  const report = new ProgressReport('r1', 0, 1000, true, (line) => lines.push(line));
  report.acked(250, null);
  const line = lines[0] as string;
  assert.ok(line.startsWith('\r\x1b[K250/1,000 rows (25%) · '), JSON.stringify(line));
  assert.ok(line.includes(' rows/s'), line);
});

const relation = {
  oid: 1,
  schema: 'public',
  name: 'outbox',
  columns: ['id', 'aggregatetype', 'aggregateid', 'type', 'payload'].map((name) => ({ name, typeOid: 25 })),
};
const mapping = {
  schema: 'public',
  table: 'outbox',
  columns: { id: 'id', key: 'aggregateid', payload: 'payload' },
  topicTemplate: 'outbox.event.{aggregatetype}',
  headerColumns: [{ column: 'type', header: 'type' }],
};
const row = new BufferRow(['e1', 'kv', 'k1', 'kv.set', '{}'].map((v) => Buffer.from(v)));

test('a replayed row: the live mapping, walnut-replay, the unknown LSN 0/0 (older than every relayed one), its place in the replay', () => {
  const record = outboxRowMapper(mapping, relation)(row, replayPosition('r1')(7));
  assert.is(record.topic, 'outbox.event.kv');
  assert.equal(headersAsText(record), {
    'walnut-commit-lsn': '0/0',
    'walnut-replay': 'r1',
    'walnut-seq': '7',
    id: 'e1',
    type: 'kv.set',
  });
});

test('a snapshot row: positioned before the consistent point, in snapshot order', () => {
  const position = snapshotPosition('snapshot.s.0/40DD850', 0x40dd84fn);
  const map = outboxRowMapper(mapping, relation);
  const first = headersAsText(map(row, position(0)));
  const later = headersAsText(map(row, position(41)));
  assert.is(first['walnut-commit-lsn'], '0/40DD84F');
  assert.is(first['walnut-seq'], '0');
  assert.is(later['walnut-seq'], '41');
  assert.is(later['walnut-replay'], 'snapshot.s.0/40DD850');
});

test.run();
