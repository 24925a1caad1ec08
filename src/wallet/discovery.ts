/**
 * Gap-limit discovery (BIP44): walk each chain until GAP_LIMIT addresses in a row have
 * never been used. What the wallet owns follows from its xpub and the chain alone, so
 * nothing about address use needs storing, and a restored wallet finds all its coins.
 */
import type { PublicNode } from './xpub.js';
import type { ChainBackend } from '../chain/backend.js';
import type { NetworkName } from '../bitcoin/network.js';
import { CHANGE, RECEIVE, deriveAddress, type ChainIndex, type DerivedAddress } from './hd.js';

export const GAP_LIMIT = 20;

export interface ChainScan {
  /** Every address derived: all used ones and the unused gap after the last. */
  addresses: DerivedAddress[];
  /** The addresses some transaction has paid: the only ones that can hold coins. */
  used: DerivedAddress[];
  /** Index of the first address after the last used one. */
  nextUnused: number;
}

/**
 * `look` tells which of a batch of addresses were ever paid: the node's own answer
 * (chain.used) unless the caller reads more of the chain on the way (wallet history).
 */
export async function scanChain(chain: ChainBackend, account: PublicNode, network: NetworkName, which: ChainIndex, gap = GAP_LIMIT, look: (addresses: string[]) => Promise<boolean[]> = (a) => chain.used(a)): Promise<ChainScan> {
  const addresses: DerivedAddress[] = [];
  const usedAddresses: DerivedAddress[] = [];
  let nextUnused = 0;
  while (addresses.length < nextUnused + gap) {
    const start = addresses.length;
    const batch = Array.from({ length: nextUnused + gap - start }, (_, k) => deriveAddress(account, network, which, start + k));
    const used = await look(batch.map((a) => a.address));
    used.forEach((u, k) => {
      if (!u) return;
      nextUnused = start + k + 1;
      usedAddresses.push(batch[k]!);
    });
    addresses.push(...batch);
  }
  return { addresses, used: usedAddresses, nextUnused };
}

export async function discover(chain: ChainBackend, account: PublicNode, network: NetworkName): Promise<{ receive: ChainScan; change: ChainScan }> {
  const [receive, change] = await Promise.all([scanChain(chain, account, network, RECEIVE), scanChain(chain, account, network, CHANGE)]);
  return { receive, change };
}
