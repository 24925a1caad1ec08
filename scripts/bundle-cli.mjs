/**
 * `npm run build`, after tsc: the CLI bundled by esbuild, twice.
 *
 * - dist/bundle/: ES modules, split where the CLI loads lazily. A command then reads 20 to 30
 *   files instead of the 250 modules its imports reach (resolving, reading and linking each was
 *   about a quarter of `wallet balance`). dist/bundle/meta.json says which sources each file
 *   holds (test/cli-fast-start.test.ts reads it).
 * - dist/snapshot/: one CommonJS script of the CLI with the library preloaded
 *   (src/cli/snapshot.ts), run under `node --build-snapshot` into a V8 start-up snapshot for
 *   this Node: swarmpay-<node version>-<system>-<machine>.blob. Starting from it skips compiling and
 *   evaluating the library in each run. A snapshot holds Node's own heap, so it serves only the
 *   Node that built it: bin/swarmpay looks for the blob named for `node --version` and
 *   `uname -sm`, else runs the ES modules.
 *
 * bin/swarmpay runs either only when it is newer than dist/cli/main.js, so a plain `tsc` build
 * after this one is never shadowed by an old bundle.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { machine, type } from 'node:os';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { snapshotPrelude } from './snapshot-prelude.mjs';

const dist = (p) => fileURLToPath(new URL(`../dist/${p}`, import.meta.url));

/** What both bundles share. */
const common = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  // tiny-secp256k1 reads its .wasm beside its own module, so it stays in node_modules; bip39 and
  // ecpair are required from node_modules too, when first needed (createRequire in the sources).
  external: ['tiny-secp256k1'],
  logLevel: 'warning',
};

rmSync(dist('bundle'), { recursive: true, force: true });
const { metafile } = await build({
  ...common,
  entryPoints: [dist('cli/main.js')],
  outdir: dist('bundle'),
  splitting: true,
  format: 'esm',
  chunkNames: 'chunk-[hash]',
  sourcemap: true,
  // The CommonJS packages bundled (commander, bitcoinjs's dependencies) call require, which an ES module lacks.
  banner: { js: "import { createRequire as __swarmpayRequire } from 'node:module'; const require = __swarmpayRequire(import.meta.url);" },
  metafile: true,
});
writeFileSync(dist('bundle/meta.json'), JSON.stringify(metafile));

rmSync(dist('snapshot'), { recursive: true, force: true });
mkdirSync(dist('snapshot'));
const bundle = dist('snapshot/swarmpay.cjs');
await build({
  ...common,
  entryPoints: [dist('cli/snapshot.js')],
  outfile: bundle,
  format: 'cjs',
  define: { 'import.meta.url': 'globalThis.__snapshotModuleUrl' },
  banner: { js: snapshotPrelude() },
});
// Named as bin/swarmpay finds it (`node --version`, `uname -s`, `uname -m`), and named so only
// once whole: Node writes it in place, and a blob cut short by a full disk or a stopped build
// would crash every run that started from it.
const blob = dist(`snapshot/swarmpay-${process.version}-${type()}-${machine()}.blob`);
try {
  execFileSync(process.execPath, ['--snapshot-blob', `${blob}.partial`, '--build-snapshot', bundle], { stdio: ['ignore', 'inherit', 'pipe'] });
  renameSync(`${blob}.partial`, blob);
} catch (e) {
  rmSync(`${blob}.partial`, { force: true });
  process.stderr.write(`building the start-up snapshot failed:\n${e.stderr ?? e.message}`);
  process.exit(1);
}
