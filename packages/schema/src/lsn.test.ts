import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { formatLsn, parseLsn } from './lsn.ts';

test("formatLsn prints Postgres's own form: two hex halves, no leading zeros", () => {
  assert.is(formatLsn(0n), '0/0');
  assert.is(formatLsn(0x16_b374_d848n), '16/B374D848');
  assert.is(formatLsn(0xa_0000_00ffn), 'A/FF');
});

test('parseLsn reads the zero-padded form older relays wrote as the same LSN', () => {
  assert.is(parseLsn('0000000A/000000FF'), parseLsn('A/FF'));
  assert.is(parseLsn('00000016/b374d848'), 0x16_b374_d848n);
  assert.is(formatLsn(parseLsn('00000016/B374D848')), '16/B374D848');
  assert.throws(() => parseLsn('16B374D848'), /not an LSN/);
});

test('LSNs compare exactly past 2^53', () => {
  const high = parseLsn('FFFFFFFF/FFFFFFFE');
  assert.ok(high < parseLsn('FFFFFFFF/FFFFFFFF'));
  assert.is(formatLsn(high + 1n), 'FFFFFFFF/FFFFFFFF');
});

test.run();
