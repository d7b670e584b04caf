import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { statusIntervalFor } from './standby-status-update.ts';

test('reports at least every third of wal_sender_timeout, so a paused reader is not taken for dead', () => {
  assert.is(statusIntervalFor(10_000, 60_000), 10_000, 'the default interval fits the default timeout');
  assert.is(statusIntervalFor(10_000, 10_000), 3_333, 'compose: wal_sender_timeout=10s');
  assert.is(statusIntervalFor(10_000, 0), 10_000, 'timeout disabled');
  assert.is(statusIntervalFor(10_000, 150), 100, 'never below 100 ms');
});

test.run();
