/**
 * `pnpm --filter @walnut/cdc-relay build`: the relay as an ESM bundle, dist/main.js
 * (with chunks it imports only when asked for), that plain `node` runs, with its
 * dependencies bundled in. A
 * sidecar should start in well under a second and carry neither a TypeScript
 * loader nor hundreds of module files to resolve: @platformatic/kafka alone is
 * several hundred files. The bin prefers dist/ when it is current (see bin/).
 */
import { copyFileSync, cpSync, existsSync, mkdirSync, readdirSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, type Plugin } from 'esbuild';

const here = (path: string) => fileURLToPath(new URL(path, import.meta.url));
/** Optional native modules the bundled libraries probe for and do without. */
const external = ['pg-native'];

/**
 * Lets esbuild drop the modules of `pkg` whose exports the relay never uses
 * (for @platformatic/kafka: the schema registries with their Avro library, the
 * consumer streams): its package.json declares no `sideEffects`, so without
 * this every module its index re-exports would be kept and run at start.
 */
function unusedModulesDropped(pkg: string, dependencies: string[] = []): Plugin {
  const inPackage = `/${pkg}/dist/`;
  const again = Symbol('resolving');
  return {
    name: 'unused-modules-dropped',
    setup(on) {
      on.onResolve({ filter: /.*/ }, async (args) => {
        if (args.pluginData === again) return undefined;
        if (args.path !== pkg && !args.importer.includes(inPackage)) return undefined;
        const resolved = await on.resolve(args.path, {
          importer: args.importer,
          kind: args.kind,
          resolveDir: args.resolveDir,
          pluginData: again,
        });
        if (resolved.errors.length > 0) return undefined;
        if (!resolved.path.includes(inPackage) && !dependencies.includes(args.path)) return undefined;
        return { path: resolved.path, sideEffects: false };
      });
    },
  };
}

/**
 * The bundle with every non-ASCII character written as a \\u escape. V8 keeps a script's
 * source for as long as the script lives, in one byte per character only if every character
 * is Latin-1; esbuild escapes strings but leaves comments and regular expressions as they
 * are, and one '→' in a comment made the 3.9 MB source a 7.7 MB two-byte string, 5 MiB of an
 * idle sidecar's RSS. A \\u escape means the same character in a string, a regular expression
 * (also one with the u flag, where a surrogate pair's two escapes make one character) and a
 * comment.
 */
function asciiOnly(code: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: the range starts where ASCII ends
  return code.replace(/[^\x00-\x7f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

const bundled = await build({
  write: false,
  entryPoints: [here('src/cli/main.ts')],
  outdir: here('dist'),
  // What the relay imports only when asked for (the Redis and NATS sinks) goes into chunks of
  // its own, which a relay that never asks never reads.
  splitting: true,
  chunkNames: 'chunks/[name]-[hash]',
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  external,
  sourcemap: true,
  metafile: true,
  logLevel: 'warning',
  // avsc: the Confluent schema registry's Avro library, a CommonJS module whose import
  // esbuild keeps (about 200 kB) unless it too is marked free of side effects.
  plugins: [unusedModulesDropped('@platformatic/kafka', ['avsc'])],
  // CommonJS dependencies bundled into ESM still call require() for Node's own modules.
  banner: {
    js: "import { createRequire as __walnutRequire } from 'node:module'; const require = __walnutRequire(import.meta.url);",
  },
});
for (const stale of ['dist/chunks', 'dist/dist', 'dist/native.wasm', 'dist/node_modules'])
  rmSync(here(stale), { recursive: true, force: true });
for (const file of bundled.outputFiles) {
  mkdirSync(path.dirname(file.path), { recursive: true });
  writeFileSync(file.path, file.path.endsWith('.js') ? asciiOnly(file.text) : file.contents);
}

// @platformatic/wasm-utils (CRC32C for record batches) reads its WebAssembly from
// ../dist/native.wasm beside its own module, i.e. beside whichever output file it was
// bundled into: dist/dist/native.wasm for a module in dist/chunks/.
const fromKafka = createRequire(createRequire(import.meta.url).resolve('@platformatic/kafka'));
const wasmUtils = path.dirname(fromKafka.resolve('@platformatic/wasm-utils'));
const withWasmUtils = Object.entries(bundled.metafile.outputs).filter(([, output]) =>
  Object.keys(output.inputs).some((input) => input.includes('/@platformatic/wasm-utils/')),
);
if (withWasmUtils.length === 0) throw new Error('build: @platformatic/wasm-utils is not in the bundle');
for (const [output] of withWasmUtils) {
  const target = path.resolve(path.dirname(output), '../dist/native.wasm');
  mkdirSync(path.dirname(target), { recursive: true });
  copyFileSync(path.join(wasmUtils, 'native.wasm'), target);
}

// @platformatic/kafka checksums record batches with @node-rs/crc32, its optional native
// addon, when require() finds it from the bundle, and with the WebAssembly above otherwise
// (0.15 against 0.6 us per KiB here). Found or not used to depend on NODE_PATH: pnpm's
// points into its store, so `pnpm bench` measured the addon that the image lacked. The
// addon and its binding for this platform (pnpm installs only that one) go into
// dist/node_modules, where the bundle's require() looks first, so every start of this dist
// checksums the same way. The patched crc32c.js loads it at the first checksum, not at start.
const crc32 = realpathSync(path.dirname(fromKafka.resolve('@node-rs/crc32/package.json')));
const bindings = readdirSync(path.dirname(crc32)).filter((name) => name.startsWith('crc32-'));
if (bindings.length === 0) throw new Error('build: @node-rs/crc32 has no binding for this platform');
for (const name of ['crc32', ...bindings]) {
  const from = realpathSync(path.join(path.dirname(crc32), name));
  const to = here(`dist/node_modules/@node-rs/${name}`);
  cpSync(from, to, { recursive: true, dereference: true });
  if (!existsSync(path.join(to, 'package.json'))) throw new Error(`build: ${name} was not copied`);
}
