/** Writes the published JSON Schema of the KV event (`pnpm gen:events`); the schema's unit test fails until it is current. */
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { renderKvEventJsonSchema } from './event-json-schema.ts';
import { KV_EVENT_SCHEMA_PATH } from './kv-event.ts';

const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));
const file = join(repoRoot, KV_EVENT_SCHEMA_PATH);
await mkdir(dirname(file), { recursive: true });
await writeFile(file, renderKvEventJsonSchema());
console.log(`wrote ${KV_EVENT_SCHEMA_PATH}`);
