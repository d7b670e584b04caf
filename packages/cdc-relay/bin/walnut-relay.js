#!/usr/bin/env node
// The built relay (dist/main.js, from `pnpm --filter @walnut/cdc-relay build`) when it
// is at least as new as the sources: one plain node process, no TypeScript loader.
// Otherwise (no build, or sources edited since) the sources through tsx, as in
// development, so a stale build never runs.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { tierFlags, tiersChosen } from './compiler-tiers.js';

// V8's compilers off before the walk below, whose loop is hot enough for V8 to compile node's
// fs functions and map its compilers' code: 3-5 MiB of an idle relay. The relay keeps them off
// until it has work (src/deferred-optimization.ts), by the same rule (compiler-tiers.js).
if (!tiersChosen(process.execArgv, process.env.NODE_OPTIONS ?? '')) {
  for (const flag of tierFlags(false)) setFlagsFromString(flag);
}

const built = new URL('../dist/main.js', import.meta.url);
// ./ too: the bundle holds compiler-tiers.js from here.
const sources = ['./', '../src/', '../../schema/src/', '../../runtime/src/'].map((dir) =>
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
