/**
 * A wallet payment in two steps, so the user can see the fee before anything is
 * unlocked or signed: plan (from the xpub and the chain) then sign (with the seed).
 */
import type { BIP32Interface } from 'bip32';
import type { ChainBackend, Utxo } from '../chain/backend.js';
import { addressToScript } from '../bitcoin/address.js';
import type { NetworkName } from '../bitcoin/network.js';
import { checkFeeRate } from '../bitcoin/policy.js';
import { checkPlan, signPlan, type SignedTx, type SpendPlan } from '../bitcoin/spend.js';
import { discover } from './discovery.js';
import { accountNode, type DerivedAddress } from './hd.js';
import { isSpendable, paymentPlan, selectCoins } from './coin-select.js';

export interface OwnedUtxo extends Utxo {
  owner: DerivedAddress;
}

export interface SendPlan {
  to: string;
  amount: bigint;
  spend: SpendPlan;
  /** The key path of each input, in input order. */
  owners: DerivedAddress[];
  change: { address: string; value: bigint } | null;
}

/**
 * Every coin the account owns, found by gap-limit discovery, its next unused change address,
 * and every address some transaction has paid (to tell a transaction's outputs that are ours).
 */
export async function ownedUtxos(chain: ChainBackend, account: BIP32Interface, network: NetworkName): Promise<{ utxos: OwnedUtxo[]; nextChange: DerivedAddress; used: DerivedAddress[] }> {
  const { receive, change } = await discover(chain, account, network);
  // Only addresses with history can hold coins; a payment racing this scan is seen next time.
  const used = [...receive.used, ...change.used];
  const byAddress = new Map(used.map((a) => [a.address, a]));
  const utxos = used.length === 0 ? [] : (await chain.utxos(used.map((a) => a.address))).map((u) => ({ ...u, owner: byAddress.get(u.address)! }));
  return { utxos, nextChange: change.addresses[change.nextUnused]!, used };
}

export async function planSend(chain: ChainBackend, account: BIP32Interface, network: NetworkName, to: string, amount: bigint, feeRate: bigint): Promise<SendPlan> {
  const p = await planPayments(chain, account, network, [{ address: to, amount }], feeRate);
  return { to, amount, ...p };
}

/** A payment to several addresses at once (their outputs first, in this order), with change to the wallet. */
export async function planPayments(chain: ChainBackend, account: BIP32Interface, network: NetworkName, to: { address: string; amount: bigint }[], feeRate: bigint): Promise<Pick<SendPlan, 'spend' | 'owners' | 'change'>> {
  // Addresses and fee rate first: bad input fails before any chain query.
  const pays = to.map((t) => ({ script: addressToScript(t.address, network), value: t.amount }));
  checkFeeRate(feeRate);
  const { utxos, nextChange } = await ownedUtxos(chain, account, network);
  const sel = selectCoins(utxos.filter((u) => isSpendable(u)), pays, nextChange.script, feeRate);
  const spend = paymentPlan(sel, pays, nextChange.script, feeRate);
  checkPlan(spend);
  return { spend, owners: sel.inputs.map((u) => u.owner), change: sel.change > 0n ? { address: nextChange.address, value: sel.change } : null };
}

/** Signs with keys derived from the seed; signPlan checks the plan again first. Any wallet spend plan with its owners will do. */
export function signSend(plan: Pick<SendPlan, 'spend' | 'owners'>, seed: Uint8Array, network: NetworkName): SignedTx {
  const account = accountNode(seed, network);
  return signPlan(plan.spend, plan.owners.map((o) => account.derive(o.chain).derive(o.index)), network);
}
