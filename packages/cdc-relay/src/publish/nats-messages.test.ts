import { parseLsn } from '@walnut/schema';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { headerName, kafkaRecord } from '../kafka-record.ts';
import { captures, KEY_HEADER, messageHeaders, messageId, templateSubject, uncaptured } from './nats-messages.ts';

const record = (lsn: string, seq: number, key: string | null = 'k1') =>
  kafkaRecord(
    'outbox.event.kv',
    key === null ? undefined : Buffer.from(key),
    Buffer.from('{"op":"set"}'),
    new Map([
      [headerName('type'), Buffer.from('kv.set')],
      [headerName('id'), Buffer.from('0b7c7c1e-8f6e-4a4e-9d55-3f1f0d2c5b11')],
    ]),
    `row ${seq}`,
    { commitLsn: parseLsn(lsn), seq },
  );

test('the message id is the commit LSN as a decimal, then the position in the transaction', () => {
  assert.is(messageId(record('0/16B3748', 3).position), '23803720-3');
  assert.is(messageId(record('FFFFFFFF/FFFFFFFF', 0).position), '18446744073709551615-0');
});

test('headers: every record header by its own name, the key in walnut-key', () => {
  const headers = messageHeaders(record('0/100', 2));
  assert.is(headers.get(KEY_HEADER), 'k1');
  assert.is(headers.get('type'), 'kv.set');
  assert.is(headers.get('id'), '0b7c7c1e-8f6e-4a4e-9d55-3f1f0d2c5b11');
  assert.equal(headers.keys().sort(), ['id', 'type', 'walnut-key']);
  assert.not.ok(messageHeaders(record('0/100', 2, null)).has(KEY_HEADER), 'no key, no header');
});

test('a header value with a line break is refused, not altered', () => {
  const bad = record('0/100', 0);
  bad.headers.set(headerName('type'), Buffer.from('kv\r\nX-Injected: 1'));
  assert.throws(() => messageHeaders(bad), /\\r or \\n/);
});

test("a template's subjects: its fixed tokens, then > from the first placeholder on", () => {
  assert.is(templateSubject('outbox.event.{aggregatetype}'), 'outbox.event.>');
  assert.is(templateSubject('outbox.{aggregatetype}.events'), 'outbox.>');
  assert.is(templateSubject('events-{aggregatetype}'), '>');
  assert.is(templateSubject('orders'), 'orders');
});

test('captures: literal tokens, * one token, > the rest', () => {
  assert.ok(captures('outbox.>', 'outbox.event.>'));
  assert.ok(captures('outbox.event.>', 'outbox.event.>'));
  assert.ok(captures('>', 'outbox.event.>'));
  assert.ok(captures('outbox.*.kv', 'outbox.event.kv'));
  assert.ok(captures('dlq', 'dlq'));
  assert.not.ok(captures('outbox.event.*', 'outbox.event.>'), '* is one token; a column value may hold dots');
  assert.not.ok(captures('outbox.event', 'outbox.event.>'));
  assert.not.ok(captures('outbox.event.kv', 'outbox.event'));
  assert.not.ok(captures('orders.>', 'outbox.event.>'));
  assert.equal(uncaptured(['outbox.>'], ['outbox.event.>', 'walnut.dlq']), ['walnut.dlq']);
});

test.run();
