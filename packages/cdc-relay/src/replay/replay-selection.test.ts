import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { countQuery, pageOrder, pageQuery, type ReplayColumns } from './replay-selection.ts';

const columns: ReplayColumns = {
  id: 'id',
  key: 'aggregateid',
  createdAt: 'created_at',
  createdAtIndexed: true,
  aggregateType: 'aggregatetype',
};

test('pages go by creation time then id when an index leads with both, else by id', () => {
  assert.equal(pageOrder({}, columns), ['created_at', 'id']);
  assert.equal(pageOrder({ since: '2026-01-01' }, columns), ['created_at', 'id']);
  assert.equal(pageOrder({ fromId: 'a' }, columns), ['id'], 'an id range scans the primary key');
  assert.equal(pageOrder({}, { ...columns, createdAtIndexed: false }), ['id']);
  assert.equal(pageOrder({}, { ...columns, createdAt: undefined }), ['id']);
});

test('the first page: the selection as parameters, in order, bounded', () => {
  const q = pageQuery(
    '"public"."outbox"',
    { since: '2026-01-01T00:00:00Z', until: '2026-01-02T00:00:00Z', aggregateType: 'kv', aggregateId: 'k1' },
    columns,
    ['created_at', 'id'],
    null,
    500,
  );
  assert.is(
    q.text,
    'SELECT *, "created_at"::text AS "walnut_cursor_0", "id"::text AS "walnut_cursor_1" FROM "public"."outbox" WHERE "created_at" >= $1 AND "created_at" < $2 AND "aggregatetype" = $3 AND "aggregateid" = $4 ORDER BY "created_at", "id" LIMIT 500',
  );
  assert.equal(q.values, ['2026-01-01T00:00:00Z', '2026-01-02T00:00:00Z', 'kv', 'k1']);
});

test('a later page starts strictly after the cursor (the leading column bounds the index scan)', () => {
  const q = pageQuery('t', { fromId: 'a', toId: 'f' }, columns, ['id'], ['c'], 100);
  assert.is(
    q.text,
    'SELECT *, "id"::text AS "walnut_cursor_0" FROM t WHERE "id" >= $1 AND "id" <= $2 AND "id" >= $3 AND ("id") > ($3) ORDER BY "id" LIMIT 100',
  );
  assert.equal(q.values, ['a', 'f', 'c']);
  const two = pageQuery('t', {}, columns, ['created_at', 'id'], ['2026-01-01 00:00:00+00', 'x'], 10);
  assert.ok(two.text.includes('WHERE "created_at" >= $1 AND ("created_at", "id") > ($1, $2)'), two.text);
});

test('the count takes the same selection and cursor, without order or limit', () => {
  const q = countQuery('t', { aggregateType: 'kv' }, columns, ['id'], ['c']);
  assert.is(q.text, 'SELECT count(*)::text AS n FROM t WHERE "aggregatetype" = $1 AND "id" >= $2 AND ("id") > ($2)');
  assert.equal(q.values, ['kv', 'c']);
  assert.is(countQuery('t', {}, columns, ['id'], null).text, 'SELECT count(*)::text AS n FROM t');
});

test('a time range without a creation time column, or a cursor of the wrong width, is refused', () => {
  assert.throws(
    () => pageQuery('t', { since: 'x' }, { ...columns, createdAt: undefined }, ['id'], null, 1),
    /time range/,
  );
  assert.throws(() => pageQuery('t', {}, columns, ['created_at', 'id'], ['x'], 1), /cursor/);
});

test.run();
