/** Waiting out another command's short hold on a lock (the keystore's, the address counter's). */
import { setTimeout as sleep } from 'node:timers/promises';
import { SwarmpayError } from '../errors.js';

/** Runs `f` again while it fails with KEYSTORE_BUSY, for up to `ms`; then lets that error through. */
export async function whileBusy<T>(f: () => T | Promise<T>, ms: number): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    try {
      return await f();
    } catch (e) {
      if (!(e instanceof SwarmpayError && e.code === 'KEYSTORE_BUSY') || Date.now() > until) throw e;
      await sleep(50);
    }
  }
}
