import * as z from 'zod';
import { KV_EVENT_SCHEMA_VERSION, kvEvent } from './kv-event.ts';

/** Names the schema's version, like its file name does; a v2 is another document, not a revision of this one. */
export const KV_EVENT_SCHEMA_ID = `urn:walnut:event:kv:v${KV_EVENT_SCHEMA_VERSION}`;

/**
 * The KV event as a JSON Schema (draft 2020-12), for consumers that do not run
 * zod. Generated from the input side of `kvEvent`: what the applier accepts.
 * On that side an object has no `additionalProperties: false` (zod strips
 * unknown keys rather than rejecting them), so a v1 consumer validating with
 * this schema keeps accepting events that gained a field.
 */
export function kvEventJsonSchema(): Record<string, unknown> {
  const { $schema, ...schema } = z.toJSONSchema(kvEvent, { io: 'input', target: 'draft-2020-12' });
  return {
    $schema,
    $id: KV_EVENT_SCHEMA_ID,
    title: `Walnut KV event v${KV_EVENT_SCHEMA_VERSION}`,
    description:
      'The value of a record on the KV events topic: the outbox payload the API wrote, forwarded byte for byte. ' +
      'See docs/events/README.md for the topic, key and headers.',
    ...schema,
  };
}

/** The committed file's exact text: two-space JSON and a final newline. */
export function renderKvEventJsonSchema(): string {
  return `${JSON.stringify(kvEventJsonSchema(), null, 2)}\n`;
}
