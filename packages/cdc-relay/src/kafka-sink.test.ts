/**
 * The sink's bookkeeping with several produce requests in flight, against a
 * scripted producer whose sends settle when the test says (the Kafka side is
 * proven by the cluster suite; this pins the order rules): acks reach the
 * tracker in send order, a checkpoint names only a prefix Kafka acked, and a
 * failed request ends the session even when later ones were acked.
 */
import { parseLsn } from '@walnut/schema';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { AckTracker } from './ack-tracker.ts';
import { RelayError } from './errors.ts';
import type { RelayProducer } from './kafka-producer.ts';
import { type KafkaRecord, kafkaRecord } from './kafka-record.ts';
import { KafkaSink, type KafkaSinkOptions } from './kafka-sink.ts';

interface Sent {
  messages: KafkaRecord[];
  resolve: () => void;
  reject: (error: Error) => void;
}

/**
 * Every send of the scripted producers. A send a test leaves pending is failed
 * after it: the sink's send timeout (a minute) would otherwise hold the process.
 */
const everySent: Sent[] = [];

function scriptedProducer() {
  const sent: Sent[] = [];
  const producer = {
    send({ messages }: { messages: KafkaRecord[] }) {
      return new Promise<void>((resolve, reject) => {
        sent.push({ messages, resolve, reject });
        everySent.push({ messages, resolve, reject });
      });
    },
  } as unknown as RelayProducer;
  return { producer, sent };
}

const options: KafkaSinkOptions = {
  maxBatchRecords: 2,
  maxBatchBytes: 1024 * 1024,
  maxRequestsInFlight: 3,
  maxRecordBytes: 1024 * 1024,
  deadLetterTopic: undefined,
  sendTimeoutMs: 60_000,
  lingerMs: 0,
  maxInflightRecords: 1_000,
  maxInflightBytes: 64 * 1024 * 1024,
  checkpoint: { topic: 'checkpoints', key: Buffer.from('relay'), slot: 's', database: 'd', systemIdentifier: '1' },
  checkpointIntervalMs: 0,
  transactional: false,
};

const record = (commitLsn: string, seq: number) =>
  kafkaRecord('events', Buffer.from(`k${seq}`), Buffer.from('{}'), new Map(), `row ${seq}`, {
    commitLsn: parseLsn(commitLsn),
    seq,
  });

const tick = () => new Promise((resolve) => setImmediate(resolve));
const events = (s: Sent) => s.messages.filter((m) => m.topic === 'events').map((m) => m.position.seq);
const checkpointOf = (s: Sent) => {
  const found = s.messages.find((m) => m.topic === 'checkpoints');
  return found ? (JSON.parse(String(found.value)) as { seq: number }).seq : null;
};

/** One transaction (commit 0/10) of n records pushed at once; the sink's requests so far. */
async function pushTransaction(sink: KafkaSink, tracker: AckTracker, n: number) {
  tracker.begin();
  for (let i = 0; i < n; i++) sink.push(record('0/10', i), tracker.track());
  tracker.commit(0x10n);
  await tick();
}

const sink = suite('kafka sink, several requests in flight');

sink.after.each(() => {
  for (const pending of everySent.splice(0)) pending.reject(new Error('test over'));
});

sink('full requests go out side by side; a partial one waits for those ahead', async () => {
  const { producer, sent } = scriptedProducer();
  const tracker = new AckTracker(0n);
  const s = new KafkaSink(producer, tracker, options, () => {});
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
  const s = new KafkaSink(producer, tracker, options, () => {});
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
  const s = new KafkaSink(producer, tracker, options, (error) => failures.push(error));
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

sink('checkpoints at most once per interval, and the last one at once on drain', async () => {
  const { producer, sent } = scriptedProducer();
  const tracker = new AckTracker(0n);
  const s = new KafkaSink(producer, tracker, { ...options, checkpointIntervalMs: 60_000 }, () => {});
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

/** A producer whose transactions commit when the test says; what each committed or was sent. */
function scriptedTransactions() {
  const sent: Sent[] = [];
  const producer = {
    async beginTransaction() {
      let messages: KafkaRecord[] = [];
      return {
        async send(request: { messages: KafkaRecord[] }) {
          messages = request.messages;
        },
        commit: () => new Promise<void>((resolve, reject) => sent.push({ messages, resolve, reject })),
      };
    },
  } as unknown as RelayProducer;
  return { producer, sent };
}

transactional('each transaction carries a checkpoint of its own last record; acks wait for the commit', async () => {
  const { producer, sent } = scriptedTransactions();
  const tracker = new AckTracker(0n);
  const s = new KafkaSink(
    producer,
    tracker,
    { ...options, transactional: true, checkpointIntervalMs: 60_000 },
    () => {},
  );
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
  const s = new KafkaSink(producer, tracker, { ...options, transactional: true }, (error) => failures.push(error));
  await pushTransaction(s, tracker, 2);
  await tick();
  sent[0]?.reject(new Error('coordinator gone'));
  await tick();
  await tick();
  assert.is(failures[0]?.code, 'KAFKA_SEND_FAILED');
  assert.is(tracker.confirmedLsn, 0n);
});

transactional.run();
