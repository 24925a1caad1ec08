/**
 * An exclusive lock file naming its owner, created whole (see createHolding), so two swarmpay
 * processes never read-modify-write the same state at once. A lock whose owner died is taken
 * over; one this process holds is never taken over (it would be two writers in one process).
 * The owner is its pid, and where Linux tells them, the boot and the process's start: after a
 * reboot, or once a crashed owner's pid is another process's, the lock is stale, where the pid
 * alone would hold it (and the coins it locks) for as long as that pid lives.
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

/** This boot's id (Linux), or null where there is none to read. */
let thisBoot: string | null | undefined;
function bootId(): string | null {
  if (thisBoot === undefined) {
    try {
      thisBoot = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim() || null;
    } catch {
      thisBoot = null;
    }
  }
  return thisBoot;
}

/**
 * When process `pid` started, in clock ticks since boot (field 22 of /proc/PID/stat, after
 * the name in parentheses, which may hold anything), or null where Linux does not say.
 */
function processStart(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
  } catch {
    return null;
  }
}

/** What this process writes in a lock: `PID [BOOT START]` (older versions read the pid first, and wrote only it). */
let ownStamp: string | undefined;
function ownerStamp(): string {
  if (ownStamp === undefined) {
    const [boot, start] = [bootId(), processStart(process.pid)];
    ownStamp = boot !== null && start !== null ? `${process.pid} ${boot} ${start}` : String(process.pid);
  }
  return ownStamp;
}

/** Whether the owner a lock names still runs: its pid, in this boot, started when it did. */
function ownerRuns(text: string, pid: number): boolean {
  if (!isAlive(pid)) return false;
  const [, boot, start] = text.trim().split(' ');
  if (boot === undefined || start === undefined) return true;
  const now = bootId();
  if (now !== null && boot !== now) return false;
  const started = processStart(pid);
  return started === null || started === start;
}

/**
 * Creates `file` holding this process's pid, or returns false if it exists. The pid is
 * written to a file of our own first and linked into place (link(2) fails if the name
 * exists), so the lock is never seen empty: an open(O_EXCL) then write left a moment in
 * which another process read no owner, took the lock for stale, removed it and took it too.
 */
function createHolding(file: string): boolean {
  const own = `${file}.${process.pid}.${randomBytes(6).toString('hex')}`;
  try {
    writeFileSync(own, ownerStamp(), { mode: 0o600, flag: 'wx' });
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
    writeFileSync(file, ownerStamp(), { mode: 0o600, flag: 'wx' });
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw ioError('lock', file, e);
  }
}

/** How long a lock file without a pid (an older version's, between its create and write) counts as being written, not stale. */
const UNWRITTEN_GRACE_MS = 10_000;

/** The owner a lock file names: its pid and whether it still runs; null: none (yet), or the file is gone. */
function readOwner(file: string): { pid: number; runs: boolean } | null {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return null;
  }
  const pid = Number.parseInt(text, 10);
  return Number.isInteger(pid) && pid > 0 ? { pid, runs: ownerRuns(text, pid) } : null;
}

/** The pid of the running process that holds lock `file`, or null: none, or its owner is gone. */
export function liveLockOwner(file: string): number | null {
  const owner = readOwner(file);
  return owner !== null && owner.runs ? owner.pid : null;
}

/** What a lock file that could not be created says: held, gone meanwhile (try again), or stale (its inode, to remove only that one). */
type Found = { held: true; pid: number | null } | { held: false; ino: number | null };

function inspect(file: string): Found {
  const owner = readOwner(file);
  let st: { ino: number; mtimeMs: number };
  try {
    st = statSync(file);
  } catch {
    return { held: false, ino: null };
  }
  if (owner === null) return Date.now() - st.mtimeMs < UNWRITTEN_GRACE_MS ? { held: true, pid: null } : { held: false, ino: st.ino };
  return owner.pid !== process.pid && owner.runs ? { held: true, pid: owner.pid } : { held: false, ino: st.ino };
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
