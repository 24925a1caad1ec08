/**
 * Whether a transaction has a spender yet. A replacement (BIP125) evicts every transaction
 * that spends an output of the one it replaces, so replacing one whose output is spent
 * would cancel that spend too: a payment the wallet may already have reported as sent.
 */
import type { ChainBackend, Spend } from '../chain/backend.js';
import { scriptToAddress } from '../bitcoin/address.js';
import type { NetworkName } from '../bitcoin/network.js';
import type { ScriptOwners } from './hd.js';

/** An output of a transaction that pays this wallet, at its address. */
export interface WalletOutput {
  txid: string;
  vout: number;
  address: string;
}

/** `txid`'s outputs that pay this wallet. */
export function walletOutputs(txid: string, outputs: readonly { script: Uint8Array }[], ownerOf: ScriptOwners): WalletOutput[] {
  return outputs.flatMap((o, vout) => {
    const owner = ownerOf(o.script);
    return owner ? [{ txid, vout, address: owner.address }] : [];
  });
}

/** The first of `txid`'s outputs that a transaction (in the mempool or a block) spends, and by what; null when none is spent. */
export async function firstSpent(chain: ChainBackend, txid: string, outputs: readonly { script: Uint8Array }[], network: NetworkName): Promise<{ vout: number; by: Spend } | null> {
  for (const [vout, o] of outputs.entries()) {
    const address = addressOf(o.script, network);
    // A script with no address (an OP_RETURN) is one no transaction of the wallet's or its payees' spends.
    if (address === null) continue;
    const by = await chain.findSpend({ txid, vout }, address);
    if (by) return { vout, by };
  }
  return null;
}

function addressOf(script: Uint8Array, network: NetworkName): string | null {
  try {
    return scriptToAddress(script, network);
  } catch {
    return null;
  }
}
