#!/usr/bin/env node
// The built relay (dist/main.js, from `pnpm --filter @walnut/cdc-relay build`) when it
// is at least as new as the sources: one plain node process, no TypeScript loader.
// Otherwise (no build, or sources edited since) the sources through tsx, as in
// development, so a stale build never runs.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const built = new URL('../dist/main.js', import.meta.url);
const sources = ['../src/', '../../schema/src/', '../../runtime/src/'].map((dir) =>
  fileURLToPath(new URL(dir, import.meta.url)),
);

/** Walks subfolders too: a file edited in src/replay/ must not leave the build running. */
function newestMs(dir) {
  let newest = statSync(dir).mtimeMs;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMs(path) : statSync(path).mtimeMs);
  }
  return newest;
}

function newestSourceMs() {
  let newest = 0;
  for (const dir of sources) if (existsSync(dir)) newest = Math.max(newest, newestMs(dir));
  return newest;
}

const useBuilt =
  process.env.WALNUT_RELAY_FROM_SOURCE !== '1' && existsSync(built) && statSync(built).mtimeMs >= newestSourceMs();
if (useBuilt) {
  await import(built.href);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('../src/cli/main.ts');
}
