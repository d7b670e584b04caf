/**
 * Issue 24 item 1: one outbox row whose aggregatetype rendered an illegal topic
 * name (`eu/orders`) stopped the whole relay. Kafka refused the batch, the
 * session failed, the next one reached the row again: 535 sessions in two
 * minutes, and no write after that row was relayed. Rendered topics are now
 * checked before sending. With RELAY_DEAD_LETTER_TOPIC the row's stand-in goes
 * there and the rows behind it are relayed; without it the relay stops
 * streaming with OUTBOX_ROW_UNMAPPABLE, naming the row and the ways out, and
 * stays up `blocked` (/ready 503, walnut_relay_state, the status page) without
 * starting session after session.
 */
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  confirmedLsn,
  exitCode,
  httpUrl,
  killAfterEach,
  pause,
  readTopic,
  startRelayCli,
  startWalnutProcess,
  type TopicRecord,
  type WalnutFixture,
  type WalnutProcess,
  walLsn,
  walnutSuite,
} from '@walnut/stack';
import * as assert from 'uvu/assert';

const unmappable = walnutSuite('unmappable outbox rows', 'unmappable_row');
/** A short cap: a relay that restarted on the row would show many sessions within seconds. */
const FAST = { RELAY_BACKOFF_MAX_MS: '1000', RELAY_STATUS_INTERVAL_MS: '200' };
const killAfterTest = killAfterEach(unmappable);

function startRelay(walnut: WalnutFixture, env: Record<string, string> = {}): WalnutProcess {
  return killAfterTest(startWalnutProcess('relay', { ...walnut.env, ...FAST, ...env }));
}

async function insert(walnut: WalnutFixture, aggregateType: string, payload: string): Promise<string> {
  const r = await walnut.pool.query<{ id: string }>(
    `INSERT INTO outbox (id, aggregatetype, aggregateid, type, payload)
     VALUES (gen_random_uuid(), $1, 'k', 'kv.set', $2::jsonb) RETURNING id::text`,
    [aggregateType, payload],
  );
  return r.rows[0]?.id as string;
}

const sessions = (relay: WalnutProcess) => relay.output.filter((line) => line.includes('"state":"streaming"')).length;

let badId = '';

unmappable(
  'without a dead-letter topic: blocked, naming the row and the ways out; no session after session',
  async ({ walnut }) => {
    // The first relay makes the slot; the rows come after it.
    const first = await walnut.startRelay(FAST);
    await insert(walnut, 'kv', '{"n": 1}');
    await readTopic(walnut.kafka, walnut.topic, (r) => r.length >= 1, 30_000);
    assert.is(await first.stop('SIGTERM'), 0);
    const beforeBad = await walLsn(walnut.pool);
    badId = await insert(walnut, 'eu/orders', '{"n": 2}');
    await insert(walnut, 'kv', '{"n": 3}');

    const relay = startRelay(walnut);
    const base = await httpUrl(relay);
    const line = await relay.waitForLine(/"code":"OUTBOX_ROW_UNMAPPABLE"/, 30_000);
    const { error } = JSON.parse(line) as { error: string };
    assert.match(error, `outbox row ${badId}`);
    assert.match(error, /committed at LSN [0-9A-F]+\/[0-9A-F]+/);
    assert.match(error, `${walnut.topic.replace(/kv$/, '')}eu/orders" is not a legal Kafka topic name`);
    assert.match(error, 'set RELAY_DEAD_LETTER_TOPIC');
    assert.match(error, 'change RELAY_TOPIC_TEMPLATE');

    assert.is((await fetch(`${base}/ready`)).status, 503);
    const metrics = await (await fetch(`${base}/metrics`)).text();
    assert.match(metrics, 'walnut_relay_state{state="blocked"} 1');
    assert.match(metrics, 'walnut_relay_state{state="streaming"} 0');
    const status = (await (await fetch(`${base}/status.json`)).json()) as { lastError: { code: string } | null };
    assert.is(status.lastError?.code, 'OUTBOX_ROW_UNMAPPABLE');

    // Several of the old restart intervals later: still the one session, still blocked, and
    // the slot confirmed nothing past the row (its WAL is kept for the fixed relay).
    await pause(5_000);
    assert.ok(relay.running, 'the relay stays up, saying so');
    assert.is(sessions(relay), 1, relay.tail());
    assert.is((await fetch(`${base}/ready`)).status, 503);
    assert.ok((await confirmedLsn(walnut.pool, walnut.slot)) <= beforeBad, 'the slot keeps the row');
    assert.is(await relay.stop('SIGTERM'), 0, relay.tail());
  },
);

unmappable(
  'with RELAY_DEAD_LETTER_TOPIC: the stand-in goes there and the rows behind it are relayed',
  async ({ walnut }) => {
    const deadLetters = `${walnut.topic}.dlq`;
    const relay = startRelay(walnut, { RELAY_DEAD_LETTER_TOPIC: deadLetters });
    await relay.waitForLine(/"state":"streaming"/, 30_000);
    const later = await insert(walnut, 'kv', '{"n": 4}');
    const records = await readTopic(walnut.kafka, walnut.topic, (r) => r.some((x) => x.headers.id === later), 30_000);
    assert.equal(
      records.map((r) => r.value),
      ['{"n": 1}', '{"n": 3}', '{"n": 4}'],
      relay.tail(),
    );
    const standIns = await readTopic(walnut.kafka, deadLetters, (r) => r.length >= 1, 30_000);
    assert.is(standIns.length, 1);
    const [standIn] = standIns;
    assert.is(standIn?.headers.id, badId);
    assert.is(standIn?.headers['walnut-dlq-reason'], 'OUTBOX_ROW_UNMAPPABLE');
    assert.is(standIn?.headers['walnut-dlq-topic'], `${walnut.topic.replace(/kv$/, '')}eu/orders`);
    assert.match(standIn?.headers['walnut-dlq-detail'] ?? '', 'not a legal Kafka topic name');
    assert.is(standIn?.value, '{"n": 2}', 'the payload is kept: the row can be re-published from it');
    assert.is(sessions(relay), 1, relay.tail());
    assert.is(await relay.stop('SIGTERM'), 0);
  },
);

unmappable('replay stops at the row, naming it, instead of sending it to an illegal topic', async ({ walnut }) => {
  const replay = startRelayCli(
    'replay',
    ['replay', '--all', '--progress-file', path.join(mkdtempSync(path.join(os.tmpdir(), 'walnut-')), 'replay.json')],
    walnut.env,
  );
  killAfterTest(replay);
  assert.is.not(await exitCode(replay, 60_000), 0, replay.tail());
  assert.match(replay.tail(), 'OUTBOX_ROW_UNMAPPABLE');
  assert.match(replay.tail(), `outbox row ${badId} cannot be re-published`);
});

// Issue 25 item 2: replay goes through the live stream's sink, dead-letter rule included.
unmappable(
  'replay with RELAY_DEAD_LETTER_TOPIC: the stand-in goes there, the rows behind it are re-published',
  async ({ walnut }) => {
    const deadLetters = `${walnut.topic}.replay-dlq`;
    const replayId = 'unmappable-dlq';
    const replay = startRelayCli(
      'replay',
      [
        'replay',
        '--all',
        '--replay-id',
        replayId,
        '--progress-file',
        path.join(mkdtempSync(path.join(os.tmpdir(), 'walnut-')), 'replay.json'),
      ],
      { ...walnut.env, RELAY_DEAD_LETTER_TOPIC: deadLetters },
    );
    killAfterTest(replay);
    assert.is(await exitCode(replay, 60_000), 0, replay.tail());
    const replayed = (records: readonly TopicRecord[]) =>
      records.filter((r) => r.headers['walnut-replay'] === replayId);
    const standIns = replayed(await readTopic(walnut.kafka, deadLetters, (r) => replayed(r).length >= 1, 30_000));
    assert.is(standIns.length, 1);
    assert.is(standIns[0]?.headers.id, badId);
    assert.is(standIns[0]?.headers['walnut-dlq-reason'], 'OUTBOX_ROW_UNMAPPABLE');
    assert.is(standIns[0]?.value, '{"n": 2}');
    const records = replayed(await readTopic(walnut.kafka, walnut.topic, (r) => replayed(r).length >= 3, 30_000));
    assert.equal(
      records.map((r) => r.value),
      ['{"n": 1}', '{"n": 3}', '{"n": 4}'],
      replay.tail(),
    );
  },
);

unmappable.run();
