import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { childSpan, formatTraceparent, parseTraceparent } from './trace-context.ts';

const valid = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

test('parses and formats a version-00 traceparent', () => {
  const context = parseTraceparent(valid);
  assert.equal(context, { traceId: '4bf92f3577b34da6a3ce929d0e0e4736', spanId: '00f067aa0ba902b7', flags: '01' });
  assert.is(formatTraceparent(context as NonNullable<typeof context>), valid);
});

test('refuses what the spec says to restart the trace on', () => {
  for (const bad of [
    '',
    'garbage',
    '00-00000000000000000000000000000000-00f067aa0ba902b7-01', // zero trace id
    '00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01', // zero span id
    'ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01', // version ff
    '00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01', // uppercase
    `${valid}-extra`, // version 00 has exactly four fields
  ]) {
    assert.is(parseTraceparent(bad), undefined, bad);
  }
});

test('a future version is read by its first four fields', () => {
  assert.is(
    parseTraceparent('01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-later')?.spanId,
    '00f067aa0ba902b7',
  );
});

test('a child span keeps the trace and flags and names its parent; no parent starts a sampled trace', () => {
  const parent = parseTraceparent(valid);
  const child = childSpan(parent);
  assert.is(child.traceId, parent?.traceId);
  assert.is(child.parentSpanId, parent?.spanId);
  assert.match(child.spanId, /^[0-9a-f]{16}$/);
  assert.is.not(child.spanId, parent?.spanId);
  const root = childSpan(undefined);
  assert.match(root.traceId, /^[0-9a-f]{32}$/);
  assert.is(root.parentSpanId, undefined);
  assert.is(root.flags, '01');
});

test.run();
