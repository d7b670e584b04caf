import { readFile } from 'node:fs/promises';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { renderKvEventJsonSchema } from './event-json-schema.ts';
import { KV_EVENT_SCHEMA_PATH, kvEvent } from './kv-event.ts';

const committedFile = new URL(`../../../${KV_EVENT_SCHEMA_PATH}`, import.meta.url);

test(`${KV_EVENT_SCHEMA_PATH} is what the generator produces from kvEvent now`, async () => {
  const committed = await readFile(committedFile, 'utf8').catch(() => '(missing)');
  assert.ok(
    committed === renderKvEventJsonSchema(),
    `${KV_EVENT_SCHEMA_PATH} is stale: kvEvent changed without regenerating it. Run \`pnpm gen:events\` and commit the file ` +
      '(a breaking change also bumps KV_EVENT_SCHEMA_VERSION; see kv-event.ts)',
  );
});

test('the JSON Schema and kvEvent agree on what an event is', async () => {
  // format "uuid" needs no checker: the schema carries zod's uuid pattern too.
  const ajv = new Ajv2020({ allErrors: true, formats: { uuid: true } });
  const validate = ajv.compile(JSON.parse(await readFile(committedFile, 'utf8')));
  const id = '0b6f5a9e-4c1e-4f7a-9a43-2f0c1d1e2a3b';
  const cases: Array<[unknown, boolean]> = [
    [{ op: 'set', key: 'k', value: { nested: [1, 'two', null, true] }, request_id: id }, true],
    [{ op: 'set', key: 'k', value: null, request_id: id }, true],
    [{ op: 'delete', key: 'k', request_id: id }, true],
    // An added field is an additive change: v1 consumers keep accepting the event.
    [{ op: 'delete', key: 'k', request_id: id, added_later: 1 }, true],
    [{ op: 'set', key: 'k', request_id: id }, false],
    [{ op: 'set', key: '', value: 1, request_id: id }, false],
    [{ op: 'set', key: 'k'.repeat(513), value: 1, request_id: id }, false],
    [{ op: 'delete', key: 'k', request_id: 'not-a-uuid' }, false],
    [{ op: 'rename', key: 'k', request_id: id }, false],
    ['set', false],
  ];
  for (const [event, valid] of cases) {
    const label = JSON.stringify(event).slice(0, 80);
    assert.is(kvEvent.safeParse(event).success, valid, `zod: ${label}`);
    assert.is(validate(event), valid, `JSON Schema: ${label} ${ajv.errorsText(validate.errors)}`);
  }
});

test.run();
