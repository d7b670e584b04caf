import { eventVersion } from '@walnut/schema';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { decodeKvMessage, newestPerKey } from './kv-message.ts';

const headers = { 'walnut-commit-lsn': Buffer.from('1/A0'), 'walnut-seq': Buffer.from('2') };
const requestId = '7d3c8f5e-2b1a-4c3d-9e8f-0a1b2c3d4e5f';

test('decodes a relayed KV event and its commit-order version', () => {
  const value = Buffer.from(JSON.stringify({ op: 'set', key: 'k', value: { n: 1 }, request_id: requestId }));
  const decoded = decodeKvMessage({ value, headers });
  assert.ok(decoded.ok);
  if (!decoded.ok) return;
  assert.equal(decoded.value.event, { op: 'set', key: 'k', value: { n: 1 }, request_id: requestId });
  assert.is(decoded.value.version, (((1n << 32n) | 0xa0n) << 32n) + 2n);
});

test('walnut-xid is carried when well formed; missing or malformed, the record still decodes without it', () => {
  const value = Buffer.from(JSON.stringify({ op: 'set', key: 'k', value: 1, request_id: requestId }));
  const xidOf = (xid?: string) => {
    const decoded = decodeKvMessage({
      value,
      headers: xid === undefined ? headers : { ...headers, 'walnut-xid': xid },
    });
    assert.ok(decoded.ok);
    return decoded.ok ? decoded.value.xid : 'not decoded';
  };
  assert.is(xidOf('4294967295'), 4294967295);
  assert.is(xidOf(undefined), undefined);
  assert.is(xidOf('12a'), undefined);
  assert.is(xidOf('12345678901'), undefined);
});

test('poison records are reported, not thrown', () => {
  assert.not.ok(decodeKvMessage({ value: Buffer.from('{nope'), headers }).ok);
  assert.not.ok(decodeKvMessage({ value: Buffer.from('{"op":"set"}'), headers }).ok);
  assert.not.ok(decodeKvMessage({ value: Buffer.from('{}'), headers: {} }).ok);
  assert.not.ok(decodeKvMessage({ value: null, headers }).ok);
});

test('a later commit beats an earlier one whatever the in-transaction sequence', () => {
  assert.ok(eventVersion('0/200', 0) > eventVersion('0/100', 5_000_000));
  const e = (lsn: string, seq: number, value: number) => ({
    event: { op: 'set' as const, key: 'k', value, request_id: requestId },
    version: eventVersion(lsn, seq),
  });
  const kept = newestPerKey([e('0/100', 1, 1), e('0/300', 0, 3), e('0/200', 9, 2)]);
  assert.is(kept.length, 1);
  assert.equal(kept[0]?.event, { op: 'set', key: 'k', value: 3, request_id: requestId });
});

test('a delete decodes as a tombstone event and competes by version like a set', () => {
  const value = Buffer.from(JSON.stringify({ op: 'delete', key: 'k', request_id: requestId }));
  const decoded = decodeKvMessage({ value, headers });
  assert.ok(decoded.ok);
  if (!decoded.ok) return;
  assert.equal(decoded.value.event, { op: 'delete', key: 'k', request_id: requestId });
  const set = {
    event: { op: 'set' as const, key: 'k', value: 1, request_id: requestId },
    version: eventVersion('0/100', 0),
  };
  assert.equal(newestPerKey([decoded.value, set]), [decoded.value]);
  assert.not.ok(decodeKvMessage({ value: Buffer.from(JSON.stringify({ op: 'delete', key: '' })), headers }).ok);
});

test.run();
