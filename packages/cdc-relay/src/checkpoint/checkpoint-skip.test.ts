import { parseLsn as lsn } from '@walnut/schema';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { alreadyDelivered, comparePositions, DeliveredFilter } from './checkpoint-skip.ts';

const at = (commitLsn: string, seq: number) => ({ commitLsn: lsn(commitLsn), seq });

test('positions order by commit LSN as a number, then by index in the transaction', () => {
  assert.ok(comparePositions(at('0/FF', 9), at('0/100', 0)) < 0, '0/FF is before 0/100 although "F" > "1"');
  assert.ok(comparePositions(at('1/0', 0), at('0/FFFFFFFF', 5)) > 0);
  assert.ok(comparePositions(at('0/100', 2), at('0/100', 3)) < 0);
  assert.is(comparePositions(at('0/100', 3), at('0/100', 3)), 0);
});

test('without a checkpoint nothing is skipped', () => {
  assert.not.ok(alreadyDelivered(at('0/1', 0), null));
});

test('records at or before the checkpoint are skipped, the rest of a split transaction is not', () => {
  const checkpoint = at('0/2000', 499); // a 1,000-row transaction, half of it committed to Kafka
  assert.ok(alreadyDelivered(at('0/1000', 7), checkpoint), 'an earlier transaction');
  assert.ok(alreadyDelivered(at('0/2000', 0), checkpoint));
  assert.ok(alreadyDelivered(at('0/2000', 499), checkpoint), 'the checkpointed record itself');
  assert.not.ok(alreadyDelivered(at('0/2000', 500), checkpoint), 'resumes mid-way');
  assert.not.ok(alreadyDelivered(at('0/2001', 0), checkpoint), 'a later transaction');
});

test('a non-transactional message sorts before the transaction whose commit record starts at its end', () => {
  // pgoutput reports a message at the end of its record (0/2000); the next commit may start there.
  const message = at('0/1FFF', 0); // the session's position for it: one byte earlier
  assert.not.ok(alreadyDelivered(at('0/2000', 0), message), 'the transaction after it is not skipped');
  assert.ok(alreadyDelivered(message, at('0/2000', 0)), 'and it is before that transaction');
});

// Issue item 7: a restored server's WAL past the checkpoint reuses its LSNs for other transactions.
const checkpointed = { commitLsn: lsn('0/2000'), seq: 4, tx: { xid: 740, commitTimeMicros: 1_700_000_000_000_000n } };

test('records are skipped only on the strength of the checkpointed transaction itself', () => {
  const filter = new DeliveredFilter(checkpointed, 0x1000n);
  assert.is(filter.transaction(lsn('0/1800'), { xid: 739, commitTimeMicros: 1n }), null, 'before it: cannot tell yet');
  assert.ok(filter.skip(at('0/1800', 0)));
  assert.ok(filter.verifying, 'the confirmed LSN is held back meanwhile');
  assert.is(filter.transaction(lsn('0/2000'), checkpointed.tx), null);
  assert.not.ok(filter.verifying);
  assert.ok(filter.skip(at('0/2000', 4)));
  assert.not.ok(filter.skip(at('0/2000', 5)), 'resumes after the checkpointed record');
});

test('another transaction at the checkpoint LSN, or past it first, is a mismatch', () => {
  const sameLsn = new DeliveredFilter(checkpointed, 0x1000n);
  const other = { xid: 740, commitTimeMicros: 1_700_000_000_000_001n }; // same xid, after a restore
  assert.match(
    sameLsn.transaction(lsn('0/2000'), other) ?? '',
    /xid 740 committed .* where the checkpoint names xid 740/,
  );
  assert.ok(sameLsn.verifying, 'still holding the confirmed LSN back');
  const past = new DeliveredFilter(checkpointed, 0x1000n);
  assert.ok(past.transaction(lsn('0/2100'), checkpointed.tx), 'the stream went past the checkpoint without showing it');
  const message = new DeliveredFilter(checkpointed, 0x1000n);
  assert.ok(message.transaction(lsn('0/2100'), { xid: 0, commitTimeMicros: 0n }), 'a message past it too');
});

test('a slot that starts past the checkpoint, or an older checkpoint without xid, is not checked', () => {
  const started = new DeliveredFilter(checkpointed, 0x2001n);
  assert.is(started.checkpoint, null);
  assert.is(started.transaction(lsn('0/2100'), { xid: 9, commitTimeMicros: 9n }), null);
  assert.not.ok(started.skip(at('0/2100', 0)));
  const legacy = new DeliveredFilter(at('0/2000', 4), 0x1000n);
  assert.is(legacy.transaction(lsn('0/2100'), { xid: 9, commitTimeMicros: 9n }), null);
  assert.not.ok(legacy.verifying);
  assert.ok(legacy.skip(at('0/2000', 4)));
});

test('a checkpoint naming a non-transactional message is met by a message at its position', () => {
  const filter = new DeliveredFilter(
    { commitLsn: lsn('0/1FFF'), seq: 0, tx: { xid: 0, commitTimeMicros: 0n } },
    0x1000n,
  );
  assert.is(filter.transaction(lsn('0/1FFF'), { xid: 0, commitTimeMicros: 0n }), null);
  assert.not.ok(filter.verifying);
});

test.run();
