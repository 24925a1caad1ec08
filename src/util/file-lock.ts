/**
 * An exclusive lock file (O_EXCL) holding the owner's pid, so two swarmpay processes
 * never read-modify-write the same state at once. A lock whose owner died is taken over;
 * one this process holds is never taken over (it would be two writers in one process).
 */
import { openSync, closeSync, readFileSync, rmSync, writeSync } from 'node:fs';
import path from 'node:path';
import { SwarmpayError, ioError } from '../errors.js';
import { isAlive } from './process.js';

export interface Lock {
  release(): void;
}

/** The lock files this process holds: its own pid in a lock file means stale only if it is not among them. */
const heldHere = new Set<string>();

export function acquireLock(file: string, what: string): Lock {
  const key = path.resolve(file);
  if (heldHere.has(key)) {
    throw new SwarmpayError('KEYSTORE_BUSY', `${what} is already open in this process`, { hint: 'close what holds it first (one payer session per channel at a time, say); nothing was changed' });
  }
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(file, 'wx', 0o600);
      writeSync(fd, String(process.pid));
      closeSync(fd);
      heldHere.add(key);
      let held = true;
      return {
        release() {
          if (held) {
            rmSync(file, { force: true });
            heldHere.delete(key);
          }
          held = false;
        },
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw ioError('lock', file, e);
      const owner = Number.parseInt(readOwner(file), 10);
      if (Number.isInteger(owner) && owner > 0 && owner !== process.pid && isAlive(owner)) {
        throw new SwarmpayError('KEYSTORE_BUSY', `${what} is in use by another swarmpay process (pid ${owner})`, {
          hint: 'wait for it to finish, or stop it; nothing was changed',
        });
      }
      // The owner is gone: the lock is stale.
      rmSync(file, { force: true });
    }
  }
  throw new SwarmpayError('KEYSTORE_BUSY', `could not lock ${what}`, { hint: 'try again' });
}

function readOwner(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}
