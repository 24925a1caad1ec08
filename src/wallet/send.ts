/**
 * A wallet payment in two steps, so the user can see the fee before anything is
 * unlocked or signed: plan (from the xpub and the chain) then sign (with the seed).
 */
import type { PublicNode } from './xpub.js';
import type { ChainBackend, Utxo } from '../chain/backend.js';
import { SwarmpayError } from '../errors.js';
import { addressToScript } from '../bitcoin/address.js';
import type { NetworkName } from '../bitcoin/network.js';
import { checkFeeRate, MIN_RELAY_FEE_RATE } from '../bitcoin/policy.js';
import { checkPlan, signPlan, type SignedTx, type SpendPlan } from '../bitcoin/spend.js';
import { discover } from './discovery.js';
import { CHANGE, accountNode, type DerivedAddress } from './hd.js';
import { isSpendable, paymentPlan, selectAll, selectCoins, selectSubtractingFee, type Payee, type Selection } from './coin-select.js';
import { FeeRate } from '../bitcoin/fee-rate.js';

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
export async function ownedUtxos(chain: ChainBackend, account: PublicNode, network: NetworkName): Promise<{ utxos: OwnedUtxo[]; nextChange: DerivedAddress; used: DerivedAddress[] }> {
  const { receive, change } = await discover(chain, account, network);
  // Only addresses with history can hold coins; a payment racing this scan is seen next time.
  const used = [...receive.used, ...change.used];
  const byAddress = new Map(used.map((a) => [a.address, a]));
  const utxos = used.length === 0 ? [] : (await chain.utxos(used.map((a) => a.address))).map((u) => ({ ...u, owner: byAddress.get(u.address)! }));
  return { utxos, nextChange: change.addresses[change.nextUnused]!, used };
}

/** How much a send pays: an amount (the payee gets it, or it less the fee), or all the wallet's spendable coins less the fee. */
export type SendAmount = { sats: bigint; subtractFee: boolean } | 'max';

/**
 * Whether a payment of the user's may spend a coin: confirmed (a coinbase matured), or the
 * wallet's own change still in the mempool. Only the wallet's own transactions pay its
 * change addresses, and it signed them, so they are not a stranger's to double-spend; a
 * contract funding still waits for confirmed coins (planPayments).
 */
export function isPayable(u: OwnedUtxo): boolean {
  return isSpendable(u) || (u.confirmations === 0 && !u.coinbase && u.owner.chain === CHANGE);
}

/**
 * A payment of the user's to `to`: from confirmed coins and the wallet's own unconfirmed
 * change, never the coins in `exclude` ("txid:vout": those another running command holds).
 */
export async function planSend(chain: ChainBackend, account: PublicNode, network: NetworkName, to: string, amount: bigint | SendAmount, feeRate: FeeRate, opts: { exclude?: ReadonlySet<string> } = {}): Promise<SendPlan> {
  const how: SendAmount = typeof amount === 'bigint' ? { sats: amount, subtractFee: false } : amount;
  const script = addressToScript(to, network);
  checkFeeRate(feeRate);
  const { utxos, nextChange } = await ownedUtxos(chain, account, network);
  const { coins, held } = unheld(utxos.filter(isPayable), opts.exclude);
  if (how !== 'max' && !how.subtractFee) return { to, amount: how.sats, ...planFrom(coins, held, [{ script, value: how.sats }], nextChange, feeRate) };
  const sel = how === 'max' ? selectAll(coins, script, feeRate, held) : selectSubtractingFee(coins, { script, value: how.sats }, nextChange.script, feeRate, held);
  return { to, amount: sel.amount, ...finishPlan(sel, [{ script, value: sel.amount }], nextChange, feeRate) };
}

/** How many blocks `--fee-rate auto` aims to confirm within: about an hour. */
const AUTO_TARGET_BLOCKS = 6;

/**
 * A fee rate given, or the node's estimate for `auto` as precise as the node gives it (sat/kvB),
 * raised to the relay minimum if below it; either way within the safety cap.
 */
export async function resolveFeeRate(chain: ChainBackend, rate: FeeRate | 'auto'): Promise<FeeRate> {
  if (rate !== 'auto') return checkFeeRate(rate);
  const estimate = await chain.estimateFeeRate(AUTO_TARGET_BLOCKS);
  if (estimate === null) {
    throw new SwarmpayError('FEE_RATE_REQUIRED', 'the node has no fee estimate yet (it has seen too few blocks or transactions)', { hint: 'pass --fee-rate <sat/vB>' });
  }
  return checkFeeRate(FeeRate.max(estimate, MIN_RELAY_FEE_RATE));
}

/** Whether a coin is among `exclude` ("txid:vout": those another running command holds). */
export const isExcluded = (u: Utxo, exclude: ReadonlySet<string> | undefined) => exclude?.has(`${u.txid}:${u.vout}`) === true;

/** The coins not among `exclude`, and the sats in those that are (for the hint when the rest fall short). */
function unheld(coins: OwnedUtxo[], exclude: ReadonlySet<string> | undefined): { coins: OwnedUtxo[]; held: bigint } {
  const free = coins.filter((u) => !isExcluded(u, exclude));
  return { coins: free, held: coins.reduce((a, u) => a + u.value, 0n) - free.reduce((a, u) => a + u.value, 0n) };
}

/** A payment to several addresses at once (their outputs first, in this order), with change to the wallet. */
export async function planPayments(chain: ChainBackend, account: PublicNode, network: NetworkName, to: { address: string; amount: bigint }[], feeRate: FeeRate, opts: { exclude?: ReadonlySet<string> } = {}): Promise<Pick<SendPlan, 'spend' | 'owners' | 'change'>> {
  // Addresses and fee rate first: bad input fails before any chain query.
  const pays = to.map((t) => ({ script: addressToScript(t.address, network), value: t.amount }));
  checkFeeRate(feeRate);
  const { utxos, nextChange } = await ownedUtxos(chain, account, network);
  const { coins, held } = unheld(utxos.filter((u) => isSpendable(u)), opts.exclude);
  return planFrom(coins, held, pays, nextChange, feeRate);
}

/** Coins for `pays` (largest first), change to `change`, checked; `held` sats more are in coins other commands hold. */
function planFrom(coins: OwnedUtxo[], held: bigint, pays: Payee[], change: DerivedAddress, feeRate: FeeRate): Pick<SendPlan, 'spend' | 'owners' | 'change'> {
  return finishPlan(selectCoins(coins, pays, change.script, feeRate, held), pays, change, feeRate);
}

function finishPlan(sel: Selection<OwnedUtxo>, pays: Payee[], change: DerivedAddress, feeRate: FeeRate): Pick<SendPlan, 'spend' | 'owners' | 'change'> {
  const spend = paymentPlan(sel, pays, change.script, feeRate);
  checkPlan(spend);
  return { spend, owners: sel.inputs.map((u) => u.owner), change: sel.change > 0n ? { address: change.address, value: sel.change } : null };
}

/** Signs with keys derived from the seed; signPlan checks the plan again first. Any wallet spend plan with its owners will do. */
export function signSend(plan: Pick<SendPlan, 'spend' | 'owners'>, seed: Uint8Array, network: NetworkName): SignedTx {
  const account = accountNode(seed, network);
  return signPlan(plan.spend, plan.owners.map((o) => account.derive(o.chain).derive(o.index)), network);
}
