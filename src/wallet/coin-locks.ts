/**
 * Coins a running command has picked and not yet spent: one lock file per outpoint in
 * the datadir, held from coin selection until the spend is broadcast, so that two
 * payments at once never pick the same coin (the second would be refused by the node as
 * a replacement, or replace the first).
 */
import { mkdirSync, readdirSync } from 'node:fs';
import path from 'node:path';
import type { ChainBackend } from '../chain/backend.js';
import type { Outpoint } from '../bitcoin/outpoint.js';
import { SwarmpayError, ioError } from '../errors.js';
import { acquireLock, liveLockOwner, type Lock } from '../util/file-lock.js';
import type { SendPlan } from './send.js';

const LOCK_DIR = 'coin-locks';
const SUFFIX = '.lock';
/** Plans tried before giving up: each retry follows another command's spend of a coin we picked. */
const ATTEMPTS = 5;

const lockName = (o: Outpoint) => `${o.txid}-${o.vout}${SUFFIX}`;
const key = (o: Outpoint) => `${o.txid}:${o.vout}`;

/** The outpoints ("txid:vout") whose lock a live process holds (this one included). */
export function heldOutpoints(networkDir: string): Set<string> {
  const dir = path.join(networkDir, LOCK_DIR);
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return new Set();
    throw ioError('read', dir, e);
  }
  const held = new Set<string>();
  for (const name of names) {
    const m = /^([0-9a-f]{64})-([0-9]+)\.lock$/.exec(name);
    if (!m) continue;
    if (liveLockOwner(path.join(dir, name)) !== null) held.add(`${m[1]}:${m[2]}`);
  }
  return held;
}

/** Locks every outpoint, or none: a coin another command holds throws KEYSTORE_BUSY with nothing left held. */
function lockOutpoints(networkDir: string, outpoints: Outpoint[]): Lock {
  const dir = path.join(networkDir, LOCK_DIR);
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (e) {
    throw ioError('create', dir, e);
  }
  const locks: Lock[] = [];
  try {
    for (const o of outpoints) locks.push(acquireLock(path.join(dir, lockName(o)), `coin ${key(o)}`));
  } catch (e) {
    for (const l of locks) l.release();
    throw e;
  }
  return { release: () => locks.forEach((l) => l.release()) };
}

/**
 * A plan from coins no other running command holds, with its coins locked until `use`
 * settles (broadcast inside it): its inputs, and its `holds` (coins it does not spend but
 * another command must not either, such as the change of a payment it replaces). `plan` is
 * asked to leave out the held coins; `taken` says which coins of the wallet's, that another
 * command could pick too, must still be unspent. One of those spent by another command
 * between the look at the chain and the lock is seen on a second look, and the plan made again.
 */
export async function withLockedCoins<P extends { spend: { inputs: Outpoint[] }; holds?: Outpoint[] }, T>(
  chain: ChainBackend,
  networkDir: string,
  plan: (exclude: ReadonlySet<string>) => Promise<P>,
  taken: (p: P) => { outpoints: Outpoint[]; addresses: string[] },
  use: (p: P) => Promise<T>,
): Promise<T> {
  for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
    const p = await plan(heldOutpoints(networkDir));
    let lock: Lock;
    try {
      lock = lockOutpoints(networkDir, [...p.spend.inputs, ...(p.holds ?? [])]);
    } catch (e) {
      if (e instanceof SwarmpayError && e.code === 'KEYSTORE_BUSY') continue;
      throw e;
    }
    try {
      // Another command may have spent a coin and let go of it since we looked: the chain (mempool included) tells.
      const { outpoints, addresses } = taken(p);
      const unspent = outpoints.length === 0 ? new Set<string>() : new Set((await chain.utxos([...new Set(addresses)])).map(key));
      if (outpoints.every((o) => unspent.has(key(o)))) return await use(p);
    } finally {
      lock.release();
    }
  }
  throw new SwarmpayError('KEYSTORE_BUSY', 'other running commands kept taking the coins this payment picked', { hint: 'try again when they are done; nothing was sent' });
}

/** Every input of a wallet payment is a coin of the wallet's, at its owner's address. */
export function allInputs(p: Pick<SendPlan, 'spend' | 'owners'>): { outpoints: Outpoint[]; addresses: string[] } {
  return { outpoints: p.spend.inputs, addresses: p.owners.map((o) => o.address) };
}
