/**
 * Preloaded with `node --import` by test/cli-fast-start.test.ts: records every module the
 * process loads into the file $SWARMPAY_LOADED_LOG, one URL or path a line. ES modules are
 * written by the load hook (in the hooks thread, before each module runs, so none is missed);
 * CommonJS modules (bip39 is one) from require's cache when the process exits.
 */
import { appendFileSync } from 'node:fs';
import { createRequire, register } from 'node:module';

const log = process.env.SWARMPAY_LOADED_LOG;
if (log) {
  register(new URL('./loaded-modules-hooks.mjs', import.meta.url), { data: { log } });
  process.on('exit', () => {
    const cache = createRequire(import.meta.url).cache;
    appendFileSync(log, Object.keys(cache).map((p) => `${p}\n`).join(''));
  });
}
