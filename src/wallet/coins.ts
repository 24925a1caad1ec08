/**
 * The wallet's coins as an operator lists them: each unspent output the account owns,
 * which chain it is on, and whether a payment may spend it now (and why not).
 */
import type { PublicNode } from './xpub.js';
import type { ChainBackend } from '../chain/backend.js';
import type { NetworkName } from '../bitcoin/network.js';
import { CHANGE } from './hd.js';
import { COINBASE_MATURITY, largestFirst } from './coin-select.js';
import { heldOutpoints } from './coin-locks.js';
import { isPayable, ownedUtxos } from './send.js';

export interface WalletCoin {
  txid: string;
  vout: number;
  value: bigint;
  /** 0 while in the mempool. */
  confirmations: number;
  address: string;
  path: string;
  /** Which chain of the account the address is on: paid to us, or our own change. */
  kind: 'receive' | 'change';
  spendable: boolean;
  /** Why a payment may not spend it yet; null when it may. */
  reason: string | null;
}

/** Every coin the account owns, largest first; spendable as `wallet send` sees it. */
export async function walletCoins(chain: ChainBackend, account: PublicNode, network: NetworkName, networkDir: string): Promise<WalletCoin[]> {
  const { utxos } = await ownedUtxos(chain, account, network);
  const held = heldOutpoints(networkDir);
  return utxos.sort(largestFirst).map((u) => {
    const reason = !isPayable(u)
      ? u.coinbase
        ? `coinbase: spendable after ${COINBASE_MATURITY} confirmations`
        : 'unconfirmed, and not our own change'
      : held.has(`${u.txid}:${u.vout}`)
        ? 'held by a running command'
        : null;
    const spendable = reason === null;
    return { txid: u.txid, vout: u.vout, value: u.value, confirmations: u.confirmations, address: u.address, path: u.owner.path, kind: u.owner.chain === CHANGE ? 'change' : 'receive', spendable, reason };
  });
}
