import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { slotBusyTimeoutMs } from './slot.ts';

test('by default a held slot is waited for longer than the server takes to reap a dead walsender', () => {
  assert.ok(slotBusyTimeoutMs(undefined, 60_000) > 60_000);
  assert.ok(slotBusyTimeoutMs(undefined, 300_000) > 300_000);
});

test('wal_sender_timeout = 0 (disabled) falls back to the Postgres default', () => {
  assert.ok(slotBusyTimeoutMs(undefined, 0) > 60_000);
});

test('RELAY_SLOT_BUSY_TIMEOUT_MS, when set, is taken as is', () => {
  assert.is(slotBusyTimeoutMs(5_000, 60_000), 5_000);
});

test.run();
