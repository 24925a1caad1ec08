/**
 * An exclusive lock file holding the owner's pid, created whole (see createHolding), so two swarmpay processes
 * never read-modify-write the same state at once. A lock whose owner died is taken over;
 * one this process holds is never taken over (it would be two writers in one process).
 */
import { randomBytes } from 'node:crypto';
import { linkSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { SwarmpayError, ioError } from '../errors.js';
import { isAlive } from './process.js';

export interface Lock {
  release(): void;
}

/** The lock files this process holds: its own pid in a lock file means stale only if it is not among them. */
const heldHere = new Set<string>();

/**
 * Creates `file` holding this process's pid, or returns false if it exists. The pid is
 * written to a file of our own first and linked into place (link(2) fails if the name
 * exists), so the lock is never seen empty: an open(O_EXCL) then write left a moment in
 * which another process read no owner, took the lock for stale, removed it and took it too.
 */
function createHolding(file: string): boolean {
  const own = `${file}.${process.pid}.${randomBytes(6).toString('hex')}`;
  try {
    writeFileSync(own, String(process.pid), { mode: 0o600, flag: 'wx' });
    linkSync(own, file);
    return true;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return false;
    // A filesystem without hard links (vfat on an SD card): create and write, which leaves
    // the lock briefly empty; an empty lock counts as busy (UNWRITTEN_GRACE_MS), not stale.
    if (code === 'EPERM' || code === 'ENOTSUP' || code === 'EOPNOTSUPP') return createThenWrite(file);
    throw ioError('lock', file, e);
  } finally {
    rmSync(own, { force: true });
  }
}

function createThenWrite(file: string): boolean {
  try {
    writeFileSync(file, String(process.pid), { mode: 0o600, flag: 'wx' });
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw ioError('lock', file, e);
  }
}

/** How long a lock file without a pid (an older version's, between its create and write) counts as being written, not stale. */
const UNWRITTEN_GRACE_MS = 10_000;

/** The pid a lock file names, or null: none (yet), or the file is gone. */
export function lockOwner(file: string): number | null {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return null;
  }
  const pid = Number.parseInt(text, 10);
  return Number.isInteger(pid) && pid > 0 ? pid : null;
}

/** What a lock file that could not be created says: held, gone meanwhile (try again), or stale (its inode, to remove only that one). */
type Found = { held: true; pid: number | null } | { held: false; ino: number | null };

function inspect(file: string): Found {
  const pid = lockOwner(file);
  let st: { ino: number; mtimeMs: number };
  try {
    st = statSync(file);
  } catch {
    return { held: false, ino: null };
  }
  if (pid === null) return Date.now() - st.mtimeMs < UNWRITTEN_GRACE_MS ? { held: true, pid: null } : { held: false, ino: st.ino };
  return pid !== process.pid && isAlive(pid) ? { held: true, pid } : { held: false, ino: st.ino };
}

/**
 * Removes the stale lock `ino`, and only it: a lock released and taken anew since it was
 * looked at is another file, and removing that one would let two processes hold the lock.
 * (Two processes finding one stale lock at the same instant still race between the stat
 * and the unlink; that needs a process that died holding it.)
 */
function removeStale(file: string, ino: number): void {
  try {
    if (statSync(file).ino === ino) rmSync(file, { force: true });
  } catch {
    /* gone already */
  }
}

export function acquireLock(file: string, what: string): Lock {
  const key = path.resolve(file);
  if (heldHere.has(key)) {
    throw new SwarmpayError('KEYSTORE_BUSY', `${what} is already open in this process`, { hint: 'close what holds it first (one payer session per channel at a time, say); nothing was changed' });
  }
  for (let attempt = 0; attempt < 2; attempt++) {
    if (createHolding(file)) {
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
    }
    const found = inspect(file);
    if (found.held) {
      throw new SwarmpayError('KEYSTORE_BUSY', `${what} is in use by another swarmpay process${found.pid === null ? '' : ` (pid ${found.pid})`}`, {
        hint: 'wait for it to finish, or stop it; nothing was changed',
      });
    }
    // Its owner is gone (the lock is stale), or it was released as we looked: try again.
    if (found.ino !== null) removeStale(file, found.ino);
  }
  throw new SwarmpayError('KEYSTORE_BUSY', `could not lock ${what}`, { hint: 'try again' });
}
