/**
 * The prelude of the CLI's start-up snapshot (snapshot-prelude.cjs, which says what it does and
 * why), with the keys of this Node's built-in modules filled in: the build (bundle-cli.mjs) puts
 * it before the CLI's modules, and test/cli-snapshot.test.ts before modules that break its rules.
 */
import { readFileSync } from 'node:fs';
import { builtinModules, createRequire } from 'node:module';

/**
 * Built-in modules a module may use as it is evaluated (a class that extends EventEmitter or
 * Transform, util.promisify, path.join of constants): plumbing that reads nothing of the
 * process. And `process`, which is the global object (what it holds is refused by the prelude):
 * an object of its own keys would lack the methods it inherits, such as `on`.
 */
const EAGER = new Set(['assert', 'buffer', 'events', 'path', 'process', 'stream', 'string_decoder', 'url', 'util', 'v8']);

/**
 * Every other built-in module's keys, from this Node (the one the snapshot is for): the prelude
 * makes each an object of these keys that loads the module on first use, in the run. Loading
 * them all here wakes the deprecated and experimental ones, whose warnings mean nothing here.
 */
function lazyBuiltinKeys() {
  const require = createRequire(import.meta.url);
  const emitWarning = process.emitWarning;
  process.emitWarning = () => {};
  try {
    return Object.fromEntries(
      builtinModules
        .filter((m) => !m.startsWith('_') && !EAGER.has(m.split('/')[0]))
        .flatMap((m) => {
          const keys = Object.getOwnPropertyNames(require(`node:${m}`));
          return [[m, keys], [`node:${m}`, keys]];
        }),
    );
  } finally {
    process.emitWarning = emitWarning;
  }
}

export function snapshotPrelude() {
  return readFileSync(new URL('./snapshot-prelude.cjs', import.meta.url), 'utf8').replace('__SNAPSHOT_LAZY_KEYS__', JSON.stringify(lazyBuiltinKeys()));
}
