import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { type Expected, judgePublication, type PublicationFacts } from './publication-verdict.ts';

const right: PublicationFacts = {
  publicationExists: true,
  allTables: false,
  publishesInsert: true,
  tableOid: 16_400,
  tablePublished: true,
  rowFilter: false,
  columnList: false,
};
const expected: Expected = {
  publication: 'walnut_outbox',
  schema: 'public',
  table: 'outbox',
  tableOid: null,
  lastGoodAt: null,
};

function drift(facts: Partial<PublicationFacts>, exp: Partial<Expected> = {}) {
  const verdict = judgePublication({ ...right, ...facts }, { ...expected, ...exp });
  if (verdict.ok) throw new Error(`expected drift, got ok for ${JSON.stringify(facts)}`);
  return verdict;
}

test('the outbox, inserts published: ok, and its oid is what is remembered', () => {
  assert.equal(judgePublication(right, expected), { ok: true, tableOid: 16_400 });
  assert.equal(judgePublication(right, { ...expected, tableOid: 16_400 }), { ok: true, tableOid: 16_400 });
});

test('FOR ALL TABLES and FOR TABLES IN SCHEMA count: the table is in pg_publication_tables', () => {
  assert.ok(judgePublication({ ...right, allTables: true }, expected).ok);
});

test('a publication of another table: not-published, naming ALTER PUBLICATION … ADD TABLE and publication sync', () => {
  const v = drift({ tablePublished: false });
  assert.is(v.drift, 'not-published');
  assert.match(v.message, 'ALTER PUBLICATION "walnut_outbox" ADD TABLE "public"."outbox"');
  assert.match(v.message, 'walnut-relay publication sync');
  assert.match(v.message, 'walnut-relay replay --since');
});

test("publish = 'update': inserts-not-published, naming SET (publish = 'insert')", () => {
  const v = drift({ publishesInsert: false });
  assert.is(v.drift, 'inserts-not-published');
  assert.match(v.message, "SET (publish = 'insert')");
});

test('the outbox dropped and created again: table-replaced, both oids named', () => {
  const v = drift({ tableOid: 16_500 }, { tableOid: 16_400 });
  assert.is(v.drift, 'table-replaced');
  assert.match(v.message, 'oid 16400, now 16500');
  assert.match(v.message, 'restart the relay');
});

test('a replaced table is reported even when the new one is published (FOR ALL TABLES)', () => {
  assert.is(drift({ tableOid: 16_500, allTables: true }, { tableOid: 16_400 }).drift, 'table-replaced');
});

test('the outbox gone, the publication gone', () => {
  assert.is(drift({ tableOid: null, tablePublished: false }).drift, 'table-missing');
  assert.is(
    drift({ publicationExists: false, tablePublished: false, publishesInsert: false }).drift,
    'publication-missing',
  );
});

test('a row filter or a column list on the outbox is drift: rows or columns would go missing', () => {
  assert.is(drift({ rowFilter: true }).drift, 'row-filter');
  assert.is(drift({ columnList: true }).drift, 'column-list');
  assert.match(drift({ rowFilter: true }).message, 'ALTER PUBLICATION "walnut_outbox" SET TABLE "public"."outbox"');
});

test('the replay hint names the last good check when there was one', () => {
  const at = new Date('2026-12-01T22:00:00.000Z');
  assert.match(drift({ tablePublished: false }, { lastGoodAt: at }).message, 'replay --since 2026-12-01T22:00:00.000Z');
});

test.run();
