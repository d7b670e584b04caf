import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { toRelayError } from './errors.ts';
import { createSlotCommand } from './replay/exported-snapshot.ts';
import { failoverWanted, noFailoverSlotsNote } from './slot-failover.ts';
import { invalidationReason, slotInvalidatedError } from './slot-invalidation.ts';

const valid = { wal_status: 'reserved', invalidation_reason: null, conflicting: null, in_recovery: false };

test("17+: the server's invalidation_reason is the reason, whatever wal_status says", () => {
  // 18 reports an idle_timeout slot as wal_status 'lost' too: lost alone does not mean wal_removed.
  assert.is(invalidationReason({ ...valid, wal_status: 'lost', invalidation_reason: 'idle_timeout' }), 'idle_timeout');
  assert.is(invalidationReason({ ...valid, invalidation_reason: 'rows_removed', conflicting: 'true' }), 'rows_removed');
  assert.is(invalidationReason({ ...valid, conflicting: 'false' }), null);
});

test('14-16: wal_status lost (16: conflicting, for any cause) is WAL removed on a primary, unknown on a standby', () => {
  assert.is(invalidationReason({ ...valid, wal_status: 'lost' }), 'wal_removed');
  // What 16.14 shows for a slot past max_slot_wal_keep_size.
  assert.is(invalidationReason({ ...valid, wal_status: 'lost', conflicting: 'true' }), 'wal_removed');
  assert.is(invalidationReason({ ...valid, wal_status: 'lost', conflicting: 'true', in_recovery: true }), 'unknown');
  assert.is(invalidationReason({ ...valid, conflicting: 'false' }), null);
  assert.is(invalidationReason(valid), null);
});

test('SLOT_INVALIDATED says the reason, is not retried and names replay', () => {
  for (const reason of ['wal_removed', 'rows_removed', 'wal_level_insufficient', 'idle_timeout', 'unknown', 'new']) {
    const error = slotInvalidatedError('walnut', reason);
    assert.is(error.code, 'SLOT_INVALIDATED');
    assert.is(error.retryable, false);
    assert.match(error.message, `(${reason}: `);
    assert.match(error.message, 'walnut-relay replay');
  }
  assert.match(slotInvalidatedError('walnut', 'idle_timeout').message, 'idle_replication_slot_timeout');
  assert.match(slotInvalidatedError('walnut', 'wal_removed').message, 'max_slot_wal_keep_size');
});

test("a START_REPLICATION refusal maps to SLOT_INVALIDATED with the server's detail", () => {
  // What Postgres 18 answers for an invalidated slot: the reason is only in the detail.
  const refusal = Object.assign(new Error('can no longer access replication slot "walnut"'), {
    code: '55000',
    detail: 'This replication slot has been invalidated due to "idle_timeout".',
  });
  const error = toRelayError(refusal);
  assert.is(error.code, 'SLOT_INVALIDATED');
  assert.is(error.retryable, false);
  assert.match(error.message, '"idle_timeout"');
  assert.match(error.message, 'walnut-relay replay');
  assert.is(toRelayError(Object.assign(new Error('other'), { code: '55000' })).code, 'REPLICATION_STREAM_FAILED');
});

test('failover slots are asked for on 17+ only, and only when the setting is on', () => {
  assert.is(failoverWanted(true, 170_010), true);
  assert.is(failoverWanted(true, 180_004), true);
  assert.is(failoverWanted(true, 160_014), false);
  assert.is(failoverWanted(false, 180_004), false);
  assert.match(noFailoverSlotsNote(160_014), 'Postgres 16 cannot');
});

test('snapshot: the old CREATE_REPLICATION_SLOT syntax on 14, FAILOVER in the option list on 17+', () => {
  assert.is(
    createSlotCommand('walnut', { failover: false, serverVersionNum: 140_023 }),
    'CREATE_REPLICATION_SLOT "walnut" LOGICAL pgoutput EXPORT_SNAPSHOT',
  );
  assert.is(
    createSlotCommand('walnut', { failover: false, serverVersionNum: 160_014 }),
    `CREATE_REPLICATION_SLOT "walnut" LOGICAL pgoutput (SNAPSHOT 'export')`,
  );
  assert.is(
    createSlotCommand('walnut', { failover: true, serverVersionNum: 180_004 }),
    `CREATE_REPLICATION_SLOT "walnut" LOGICAL pgoutput (FAILOVER true, SNAPSHOT 'export')`,
  );
});

test.run();
