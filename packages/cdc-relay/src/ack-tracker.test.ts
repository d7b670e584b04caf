import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { AckTracker } from './ack-tracker.ts';

test('confirms a transaction only after every record is acked and it committed', () => {
  const t = new AckTracker(100n);
  t.begin();
  const a = t.track();
  const b = t.track();
  t.ack(a);
  assert.is(t.confirmedLsn, 100n);
  t.commit(200n);
  assert.is(t.confirmedLsn, 100n, 'one record still unacked');
  t.ack(b);
  assert.is(t.confirmedLsn, 200n);
  assert.is(t.inflightRecords, 0);
});

test('out-of-order acks never move past an unacked earlier transaction', () => {
  const t = new AckTracker(0n);
  t.begin();
  const first = t.track();
  t.commit(10n);
  t.begin();
  const second = t.track();
  t.commit(20n);
  t.begin();
  const third = t.track();
  t.commit(30n);
  t.ack(third);
  t.ack(second);
  assert.is(t.confirmedLsn, 0n);
  t.ack(first);
  assert.is(t.confirmedLsn, 30n);
});

test('an open transaction holds back later keepalives', () => {
  const t = new AckTracker(0n);
  t.begin();
  const r = t.track();
  t.ack(r);
  t.keepalive(500n);
  assert.is(t.confirmedLsn, 0n, 'commit not seen yet');
  t.commit(40n);
  assert.is(t.confirmedLsn, 40n);
  t.keepalive(500n);
  assert.is(t.confirmedLsn, 500n);
});

test('transactions without outbox records still advance the LSN', () => {
  const t = new AckTracker(0n);
  t.begin();
  t.commit(70n);
  assert.is(t.confirmedLsn, 70n);
});

test('keepalive waits for unacked records of committed transactions', () => {
  const t = new AckTracker(0n);
  t.begin();
  const r = t.track();
  t.commit(50n);
  t.keepalive(900n);
  assert.is(t.confirmedLsn, 0n);
  t.ack(r);
  assert.is(t.confirmedLsn, 50n);
  t.keepalive(900n);
  assert.is(t.confirmedLsn, 900n);
});

test('never moves backwards', () => {
  const t = new AckTracker(1000n);
  t.begin();
  t.commit(900n);
  t.keepalive(800n);
  assert.is(t.confirmedLsn, 1000n);
});

test('a long stream keeps a bounded queue and the right LSN', () => {
  const t = new AckTracker(0n);
  const tokens = [];
  for (let i = 1; i <= 5000; i++) {
    t.begin();
    tokens.push(t.track());
    t.commit(BigInt(i * 10));
  }
  assert.is(t.pendingTransactions, 5000);
  // Acks arrive newest first: nothing is confirmable until the oldest arrives.
  for (let i = tokens.length - 1; i >= 1; i--) t.ack(tokens[i] as object);
  assert.is(t.confirmedLsn, 0n);
  t.ack(tokens[0] as object);
  assert.is(t.confirmedLsn, 50000n);
  assert.is(t.pendingTransactions, 0);
});

test('rejects protocol misuse loudly', () => {
  const t = new AckTracker(0n);
  assert.throws(() => t.track());
  assert.throws(() => t.commit(1n));
  const tok = t.begin();
  assert.throws(() => t.begin());
  assert.throws(() => t.ack(tok));
});

test('a keepalive that overtook queued messages waits until they are handled', () => {
  const t = new AckTracker(0n);
  t.messageReceived(); // begin
  t.messageReceived(); // insert
  t.messageReceived(); // commit
  t.keepalive(500n); // arrives while the three wait behind flow control
  assert.is(t.confirmedLsn, 0n, 'the three messages before it are not handled yet');
  t.begin();
  t.messageHandled();
  const r = t.track();
  t.messageHandled();
  t.commit(100n);
  t.messageHandled();
  assert.is(t.confirmedLsn, 0n, 'handled, but the record is not acked: the keepalive cannot vouch for it');
  t.ack(r);
  assert.is(t.confirmedLsn, 100n);
  t.messageReceived();
  t.messageHandled();
  t.keepalive(600n);
  assert.is(t.confirmedLsn, 600n, 'nothing pending: a later keepalive advances it');
});

test('the LSN given to the client library is one less than the confirmed one, which it reports +1', () => {
  const t = new AckTracker(0n);
  assert.is(t.flushLsnToReport, null, 'nothing to confirm yet');
  t.begin();
  const r = t.track();
  t.commit(0x16b3748n);
  t.ack(r);
  assert.is(t.flushLsnToReport, 0x16b3747n);
});

test.run();
