/**
 * `npm run build`, after tsc: the CLI bundled by esbuild into ES modules in dist/bundle/,
 * split where the CLI loads lazily. A command then reads 20 to 30 files instead of the
 * 250 modules its imports reach (resolving, reading and linking each was about a quarter of
 * `wallet balance`). bin/swarmpay runs the bundle only when it is newer than dist/cli/main.js,
 * so a plain `tsc` build after it is never shadowed by an old bundle. dist/bundle/meta.json
 * says which sources each file holds (test/cli-fast-start.test.ts reads it).
 */
import { rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const dist = (p) => fileURLToPath(new URL(`../dist/${p}`, import.meta.url));

rmSync(dist('bundle'), { recursive: true, force: true });
const { metafile } = await build({
  entryPoints: [dist('cli/main.js')],
  outdir: dist('bundle'),
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  chunkNames: 'chunk-[hash]',
  sourcemap: true,
  // tiny-secp256k1 reads its .wasm beside its own module, so it stays in node_modules.
  external: ['tiny-secp256k1'],
  // The CommonJS packages bundled (commander, bitcoinjs's dependencies) call require, which an ES module
  // lacks; bip39, ecpair and tiny-secp256k1 are not bundled: the code requires them from node_modules when first needed.
  banner: { js: "import { createRequire as __swarmpayRequire } from 'node:module'; const require = __swarmpayRequire(import.meta.url);" },
  metafile: true,
  logLevel: 'warning',
});
writeFileSync(dist('bundle/meta.json'), JSON.stringify(metafile));
