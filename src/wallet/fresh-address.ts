/**
 * `wallet address --new`: a receive address never handed out before, even while unpaid.
 * Discovery alone cannot tell an address given out from one never shown, so the next
 * index to give is kept in a small file beside the keystore, written before the address
 * is returned and under a lock, so two calls at once never give the same one.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { PublicNode } from './xpub.js';
import type { ChainBackend } from '../chain/backend.js';
import type { NetworkName } from '../bitcoin/network.js';
import { SwarmpayError, ioError } from '../errors.js';
import { writeFileAtomic } from '../util/atomic-file.js';
import { acquireLock } from '../util/file-lock.js';
import { whileBusy } from './busy.js';
import { GAP_LIMIT, scanChain } from './discovery.js';
import { RECEIVE, deriveAddress } from './hd.js';

const STATE_FILE = 'addresses.json';
/** How long a call waits for another one giving out an address: a chain scan or two. */
const LOCK_WAIT_MS = 10_000;

export interface FreshAddress {
  address: string;
  path: string;
  index: number;
}

export async function freshReceiveAddress(chain: ChainBackend, account: PublicNode, network: NetworkName, networkDir: string): Promise<FreshAddress> {
  const file = path.join(networkDir, STATE_FILE);
  const lock = await whileBusy(() => acquireLock(`${file}.lock`, 'the address counter'), LOCK_WAIT_MS);
  try {
    const given = readNextIndex(file);
    const scan = await scanChain(chain, account, network, RECEIVE);
    const index = Math.max(given, scan.nextUnused);
    // Discovery looks GAP_LIMIT addresses past the last paid one: a payment to an address
    // further out would not be found, nor by a wallet restored from the mnemonic.
    if (index >= scan.nextUnused + GAP_LIMIT) {
      throw new SwarmpayError('USAGE', `the last ${GAP_LIMIT} addresses given out are all unpaid; a payment to one more would be past what the wallet scans`, {
        hint: 'reuse one given out (`wallet address` shows the first unpaid) until one of them is paid',
        details: { unpaid: index - scan.nextUnused },
      });
    }
    writeFileAtomic(file, JSON.stringify({ nextReceiveIndex: index + 1 }) + '\n', 0o600);
    const a = deriveAddress(account, network, RECEIVE, index);
    return { address: a.address, path: a.path, index };
  } finally {
    lock.release();
  }
}

/** The next receive index to give out; 0 before the first. */
function readNextIndex(file: string): number {
  if (!existsSync(file)) return 0;
  let doc: unknown;
  try {
    doc = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    if (e instanceof SyntaxError) throw damaged(file);
    throw ioError('read', file, e);
  }
  const n = (doc as { nextReceiveIndex?: unknown } | null)?.nextReceiveIndex;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) throw damaged(file);
  return n;
}

function damaged(file: string): SwarmpayError {
  return new SwarmpayError('INVALID_FILE', `${file} is damaged`, {
    hint: 'delete it: the next --new address then starts after the last paid one, and may repeat an address given out but never paid',
  });
}
