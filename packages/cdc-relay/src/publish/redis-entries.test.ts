import { parseLsn } from '@walnut/schema';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { headerName, kafkaRecord } from '../kafka-record.ts';
import { compareIds, entryId, isIdRefusal, refusalVerdict, toRedisFailure, xaddArgs } from './redis-entries.ts';

const record = (lsn: string, seq: number, key: string | null = 'k1') =>
  kafkaRecord(
    'outbox.event.kv',
    key === null ? undefined : Buffer.from(key),
    Buffer.from('{"op":"set"}'),
    new Map([[headerName('type'), Buffer.from('kv.set')]]),
    `row ${seq}`,
    { commitLsn: parseLsn(lsn), seq },
  );

test('the entry id is the commit LSN as a decimal, then the position in the transaction', () => {
  assert.is(entryId(record('0/16B3748', 3).position), '23803720-3');
  // LSNs are 64-bit; so is a stream id's first part: no precision is lost above 2^53.
  assert.is(entryId(record('FFFFFFFF/FFFFFFFF', 0).position), '18446744073709551615-0');
});

test('ids increase in commit order: within a transaction by position, across by LSN', () => {
  const ids = [record('0/100', 0), record('0/100', 1), record('0/100', 10), record('0/200', 0)].map((r) =>
    entryId(r.position),
  );
  for (let i = 1; i < ids.length; i++) assert.is(compareIds(ids[i - 1] as string, ids[i] as string), -1, ids.join());
  assert.is(compareIds('9-0', '10-0'), -1, 'numeric, not textual');
});

test('XADD arguments: stream, optional MAXLEN ~, id, key, payload, h:<header>', () => {
  const args = xaddArgs(record('0/100', 2), undefined).map(String);
  assert.equal(args, ['outbox.event.kv', '256-2', 'key', 'k1', 'payload', '{"op":"set"}', 'h:type', 'kv.set']);
  const trimmed = xaddArgs(record('0/100', 2), 1000).map(String);
  assert.equal(trimmed.slice(0, 5), ['outbox.event.kv', 'MAXLEN', '~', '1000', '256-2']);
  assert.equal(
    xaddArgs(record('0/100', 0, null), undefined)
      .map(String)
      .slice(2, 4),
    ['payload', '{"op":"set"}'],
  );
});

test('a refused resend counts as delivered only when the stream holds it or was trimmed past it', () => {
  assert.ok(isIdRefusal(new Error('ERR The ID specified in XADD is equal or smaller than the target stream top item')));
  assert.not.ok(isIdRefusal(new Error('WRONGTYPE Operation against a key holding the wrong kind of value')));
  assert.is(refusalVerdict('s', '256-2', true, '1-0'), undefined);
  assert.is(refusalVerdict('s', '256-2', false, '300-0'), undefined, 'trimmed past it');
  const lost = refusalVerdict('s', '256-2', false, '100-0');
  assert.is(lost?.code, 'SINK_SEND_FAILED');
  assert.is(lost?.retryable, false);
});

test('Redis errors: credentials and key types stop the relay; the rest are retried', () => {
  assert.is(toRedisFailure(new Error('WRONGPASS invalid username-password pair'), 'x').retryable, false);
  assert.is(toRedisFailure(new Error('WRONGTYPE Operation against a key'), 'x').retryable, false);
  const lost = toRedisFailure(new Error('Connection is closed.'), 'a pipeline');
  assert.is(lost.code, 'SINK_SEND_FAILED');
  assert.ok(lost.retryable);
  assert.match(lost.message, /Redis/);
});

test.run();
