/**
 * The sink's bookkeeping with several produce requests in flight, against a
 * scripted producer whose sends settle when the test says (the Kafka side is
 * proven by the cluster suite; this pins the order rules): acks reach the
 * tracker in send order, a checkpoint names only a prefix Kafka acked, and a
 * failed request ends the session even when later ones were acked.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { AckTracker, type TxToken } from '../ack-tracker.ts';
import { RelayError } from '../errors.ts';
import type { RelayProducer } from '../kafka-producer.ts';
import { allocWire, WIRE_HEAD_ROOM, WireRecord } from '../wire-record.ts';
import { KafkaSink } from './kafka-sink.ts';
import type { KafkaSinkOptions } from './kafka-sink-options.ts';
import {
  checkpointOf,
  events,
  failPending,
  options,
  record,
  type Sent,
  scriptedProducer,
  scriptedTransactions,
  tick,
} from './scripted-kafka.ts';

/** The stream's sink as the session opens it: acks go to the tracker, a failure to `failures`. */
function streamSink(producer: RelayProducer, tracker: AckTracker, opts: KafkaSinkOptions, failures: RelayError[] = []) {
  return new KafkaSink<TxToken>(producer, opts, {
    acked: (token) => tracker.ack(token),
    failed: (error) => failures.push(error),
  });
}

/** Checkpoints at most once per `intervalMs`. */
const interval = (intervalMs: number, opts: KafkaSinkOptions = options): KafkaSinkOptions => ({
  ...opts,
  checkpoint: opts.checkpoint && { ...opts.checkpoint, intervalMs },
});

/** One transaction (commit 0/10) of n records pushed at once; the sink's requests so far. */
async function pushTransaction(sink: KafkaSink<TxToken>, tracker: AckTracker, n: number) {
  tracker.begin();
  for (let i = 0; i < n; i++) sink.push(record('0/10', i), tracker.track());
  tracker.commit(0x10n);
  await tick();
}

const sink = suite('kafka sink, several requests in flight');

sink.after.each(failPending);

sink('full requests go out side by side; a partial one waits for those ahead', async () => {
  const { producer, sent } = scriptedProducer();
  const tracker = new AckTracker(0n);
  const s = streamSink(producer, tracker, options);
  await pushTransaction(s, tracker, 7);
  assert.equal(
    sent.map(events),
    [
      [0, 1],
      [2, 3],
      [4, 5],
    ],
    'three full requests, the cap',
  );
  sent[0]?.resolve();
  await tick();
  assert.is(sent.length, 3, 'room for one more, but it would be partial');
  sent[1]?.resolve();
  sent[2]?.resolve();
  await tick();
  assert.equal(sent.map(events).at(-1), [6], 'the partial one goes once nothing is in flight');
  assert.is(checkpointOf(sent[3] as Sent), 5, 'with the checkpoint of what was acked before it');
});

sink('acks reach the tracker in send order, and checkpoints name only an acked prefix', async () => {
  const { producer, sent } = scriptedProducer();
  const tracker = new AckTracker(0n);
  const s = streamSink(producer, tracker, options);
  await pushTransaction(s, tracker, 6);
  sent[2]?.resolve();
  sent[1]?.resolve();
  await tick();
  assert.is(tracker.inflightRecords, 6, 'later requests acked first wait for the first');
  assert.is(tracker.confirmedLsn, 0n);
  sent[0]?.resolve();
  await tick();
  assert.is(tracker.inflightRecords, 0);
  assert.is(tracker.confirmedLsn, 0x10n);
  assert.equal(sent.map(checkpointOf), [null, null, null, 5], 'then the idle checkpoint names the last record');
});

sink('a failed request fails the session although a later one was acked', async () => {
  const { producer, sent } = scriptedProducer();
  const tracker = new AckTracker(0n);
  const failures: RelayError[] = [];
  const s = streamSink(producer, tracker, options, failures);
  await pushTransaction(s, tracker, 4);
  sent[1]?.resolve();
  await tick();
  sent[0]?.reject(new Error('NOT_ENOUGH_REPLICAS'));
  await tick();
  assert.is(failures.length, 1);
  assert.is(failures[0]?.code, 'KAFKA_SEND_FAILED');
  assert.is(tracker.confirmedLsn, 0n, 'nothing confirmed: the session replays all four');
  assert.is(tracker.inflightRecords, 4);
  tracker.begin();
  assert.throws(
    () => s.push(record('0/20', 0), tracker.track()),
    (e: unknown) => e instanceof RelayError,
  );
});

/** A record whose bytes come from the shared slabs, as the outbox mapper makes them. */
function slabRecord(seq: number): WireRecord {
  const { wire, slab } = allocWire(WIRE_HEAD_ROOM + 64);
  wire.fill(0, WIRE_HEAD_ROOM);
  return new WireRecord('t', wire, 64, { commitLsn: 0x10n, seq }, undefined, slab);
}
const readable = (r: WireRecord) => {
  try {
    return r.wire.length > 0;
  } catch {
    return false;
  }
};

sink("records' bytes go back to their slab only once every request up to theirs is acked", async () => {
  const { producer, sent } = scriptedProducer();
  const tracker = new AckTracker(0n);
  const s = streamSink(producer, tracker, options);
  const records = Array.from({ length: 6 }, (_, i) => slabRecord(i));
  tracker.begin();
  for (const r of records) s.push(r, tracker.track());
  tracker.commit(0x10n);
  await tick();
  sent[2]?.resolve();
  sent[1]?.resolve();
  await tick();
  assert.equal(records.map(readable), [true, true, true, true, true, true], 'acked behind an unacked request: kept');
  sent[0]?.resolve();
  await tick();
  assert.equal(records.map(readable), [false, false, false, false, false, false]);
});

sink("a failed request's records, and those acked after it, keep their bytes", async () => {
  const { producer, sent } = scriptedProducer();
  const tracker = new AckTracker(0n);
  const failures: RelayError[] = [];
  const s = streamSink(producer, tracker, options, failures);
  const records = Array.from({ length: 4 }, (_, i) => slabRecord(i));
  tracker.begin();
  for (const r of records) s.push(r, tracker.track());
  tracker.commit(0x10n);
  await tick();
  sent[1]?.resolve();
  await tick();
  sent[0]?.reject(new Error('NOT_ENOUGH_REPLICAS'));
  await tick();
  assert.is(failures.length, 1);
  assert.equal(records.map(readable), [true, true, true, true]);
});

sink('checkpoints at most once per interval, and the last one at once on drain', async () => {
  const { producer, sent } = scriptedProducer();
  const tracker = new AckTracker(0n);
  const s = streamSink(producer, tracker, interval(60_000));
  await pushTransaction(s, tracker, 2);
  sent[0]?.resolve();
  await tick();
  assert.is(sent.length, 2, 'the first checkpoint goes alone when idle');
  assert.is(checkpointOf(sent[1] as Sent), 1);
  sent[1]?.resolve();
  await tick();
  tracker.begin();
  for (let i = 0; i < 2; i++) s.push(record('0/20', i), tracker.track());
  tracker.commit(0x20n);
  await tick();
  assert.is(checkpointOf(sent[2] as Sent), null, 'within the interval a request carries none');
  sent[2]?.resolve();
  await tick();
  assert.is(sent.length, 3, 'and no lone one follows it yet');
  const drained = s.drain(1_000);
  await tick();
  assert.is(checkpointOf(sent[3] as Sent), 1, 'drain sends the last acked position at once');
  sent[3]?.resolve();
  assert.is(await drained, true);
});

sink.run();

const transactional = suite('kafka sink, exactly-once (one transaction at a time)');

transactional('each transaction carries a checkpoint of its own last record; acks wait for the commit', async () => {
  const { producer, sent } = scriptedTransactions();
  const tracker = new AckTracker(0n);
  const s = streamSink(producer, tracker, interval(60_000, { ...options, transactions: 'per-request' }));
  await pushTransaction(s, tracker, 5);
  await tick();
  assert.is(sent.length, 1, 'one transaction at a time, whatever maxRequestsInFlight says');
  assert.equal(events(sent[0] as Sent), [0, 1]);
  assert.is(checkpointOf(sent[0] as Sent), 1, 'the checkpoint names the last record of its own transaction');
  assert.is(tracker.inflightRecords, 5, 'nothing acked before the commit');
  sent[0]?.resolve();
  await tick();
  await tick();
  assert.is(tracker.inflightRecords, 3);
  assert.is(sent.length, 2);
  assert.equal(events(sent[1] as Sent), [2, 3]);
  assert.is(checkpointOf(sent[1] as Sent), 3);
  sent[1]?.resolve();
  await tick();
  await tick();
  assert.equal(events(sent[2] as Sent), [4]);
  sent[2]?.resolve();
  assert.is(await s.drain(1_000), true);
  assert.is(sent.length, 3, 'no lone checkpoint after the last commit: it already says where the relay is');
  assert.is(tracker.confirmedLsn, 0x10n);
});

transactional('a transaction that does not commit ends the session with nothing acked', async () => {
  const { producer, sent } = scriptedTransactions();
  const tracker = new AckTracker(0n);
  const failures: RelayError[] = [];
  const s = streamSink(producer, tracker, { ...options, transactions: 'per-request' }, failures);
  await pushTransaction(s, tracker, 2);
  await tick();
  sent[0]?.reject(new Error('coordinator gone'));
  await tick();
  await tick();
  assert.is(failures[0]?.code, 'KAFKA_SEND_FAILED');
  assert.is(tracker.confirmedLsn, 0n);
});

transactional.run();
