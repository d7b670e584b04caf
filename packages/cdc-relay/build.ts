/**
 * `pnpm --filter @walnut/cdc-relay build`: the relay as one ESM file,
 * dist/main.js, that plain `node` runs, with its dependencies bundled in. A
 * sidecar should start in well under a second and carry neither a TypeScript
 * loader nor hundreds of module files to resolve: @platformatic/kafka alone is
 * several hundred files. The bin prefers dist/ when it is current (see bin/).
 */
import { copyFileSync } from 'node:fs';
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
function unusedModulesDropped(pkg: string): Plugin {
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
        if (resolved.errors.length > 0 || !resolved.path.includes(inPackage)) return undefined;
        return { path: resolved.path, sideEffects: false };
      });
    },
  };
}

await build({
  entryPoints: [here('src/cli/main.ts')],
  outfile: here('dist/main.js'),
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  external,
  sourcemap: true,
  logLevel: 'warning',
  plugins: [unusedModulesDropped('@platformatic/kafka')],
  // CommonJS dependencies bundled into ESM still call require() for Node's own modules.
  banner: {
    js: "import { createRequire as __walnutRequire } from 'node:module'; const require = __walnutRequire(import.meta.url);",
  },
});

// @platformatic/wasm-utils (CRC32C for record batches) reads its WebAssembly beside its
// own module, i.e. beside dist/main.js once bundled.
const fromKafka = createRequire(createRequire(import.meta.url).resolve('@platformatic/kafka'));
const wasmUtils = path.dirname(fromKafka.resolve('@platformatic/wasm-utils'));
copyFileSync(path.join(wasmUtils, 'native.wasm'), here('dist/native.wasm'));
