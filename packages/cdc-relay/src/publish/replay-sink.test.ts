/**
 * Replay's and snapshot's sink (issue 25 item 2: the stream's sink, in
 * `sealed` mode): a group of pages is one Kafka transaction whose requests go
 * side by side, acked only once it commits; a group that fills the window
 * ends there; a fence stops the run with REPLAY_FENCED.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { RelayError } from '../errors.ts';
import type { RelayProducer } from '../kafka-producer.ts';
import { KafkaSink } from './kafka-sink.ts';
import type { KafkaSinkOptions } from './kafka-sink-options.ts';
import { events, failPending, options, record, scriptedGroups, tick } from './scripted-kafka.ts';

const replayOptions: KafkaSinkOptions = {
  ...options,
  publisher: 'replay',
  transactions: 'sealed',
  checkpoint: undefined,
};

const sealed = suite('kafka sink, sealed groups (replay and snapshot)');

sealed.after.each(failPending);

function replaySink(producer: RelayProducer, opts: KafkaSinkOptions = replayOptions) {
  const acked: number[] = [];
  const failures: RelayError[] = [];
  const sink = new KafkaSink<number>(producer, opts, {
    acked: (token) => acked.push(token),
    failed: (error) => failures.push(error),
  });
  return { sink, acked, failures };
}

sealed('a sealed group is one transaction: its requests go side by side, acks wait for its commit', async () => {
  const { producer, sent, commits, begun } = scriptedGroups();
  const { sink, acked } = replaySink(producer);
  for (let i = 0; i < 5; i++) sink.push(record('0/0', i), i);
  sink.seal();
  await tick();
  assert.equal(sent.map(events), [[0, 1], [2, 3], [4]], "the group's last request goes at once, partial or not");
  for (const s of sent) s.resolve();
  await tick();
  assert.is(commits.length, 1, 'committed once every request of the group is acked');
  assert.equal(acked, [], 'nothing acked before the commit');
  for (let i = 5; i < 7; i++) sink.push(record('0/0', i), i);
  await tick();
  assert.is(sent.length, 3, 'no request of the next group while this one commits');
  commits[0]?.resolve();
  await tick();
  await tick();
  assert.equal(acked, [0, 1, 2, 3, 4]);
  assert.equal(sent.map(events).at(-1), [5, 6], 'then the next group begins');
  assert.is(begun(), 2);
  const drained = sink.drain();
  sent[3]?.resolve();
  await tick();
  commits[1]?.resolve();
  assert.is(await drained, true, 'drain seals and commits the open group');
  assert.equal(acked, [0, 1, 2, 3, 4, 5, 6]);
});

sealed('a group that fills the window ends there, so its commit makes room', async () => {
  const { producer, sent, commits } = scriptedGroups();
  const { sink, acked } = replaySink(producer, { ...replayOptions, maxInflightRecords: 3 });
  assert.is(sink.push(record('0/0', 0), 0), undefined);
  assert.is(sink.push(record('0/0', 1), 1), undefined);
  const room = sink.push(record('0/0', 2), 2);
  assert.ok(room, 'the window is full');
  await tick();
  assert.equal(sent.map(events), [[0, 1], [2]]);
  for (const s of sent) s.resolve();
  await tick();
  commits[0]?.resolve();
  await room;
  assert.equal(acked, [0, 1, 2]);
});

sealed('a fenced send stops the run with REPLAY_FENCED, nothing acked', async () => {
  const { producer, sent } = scriptedGroups();
  const { sink, acked, failures } = replaySink(producer);
  sink.push(record('0/0', 0), 0);
  sink.seal();
  await tick();
  const fenced = Object.assign(new Error('There is a newer producer with the same transactionalId'), {
    findBy: (key: string, value: unknown) => (key === 'apiId' && value === 'PRODUCER_FENCED' ? {} : undefined),
  });
  sent[0]?.reject(fenced);
  await tick();
  await tick();
  assert.is(failures[0]?.code, 'REPLAY_FENCED');
  assert.equal(acked, []);
  assert.throws(
    () => sink.push(record('0/0', 1), 1),
    (e: unknown) => e instanceof RelayError,
  );
});

sealed.run();
