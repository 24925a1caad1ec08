/**
 * `wallet bump`: replace one of the wallet's own unconfirmed payments by the same payment
 * at a higher fee rate (BIP125; every input swarmpay signs signals it). Same inputs, same
 * outputs, the extra fee taken from the change. Planned from the xpub and the chain, then
 * signed with the seed, as a payment is. A replacement evicts whatever spends the payment's
 * outputs, so a payment whose output is spent is not replaced: that spend would be cancelled.
 */
import type { PublicNode } from './xpub.js';
import { Transaction } from 'bitcoinjs-lib';
import type { ChainBackend } from '../chain/backend.js';
import { SwarmpayError } from '../errors.js';
import type { NetworkName } from '../bitcoin/network.js';
import { MIN_RELAY_FEE_RATE, checkFeeRate, dustThreshold } from '../bitcoin/policy.js';
import { checkPlan, type SpendPlan } from '../bitcoin/spend.js';
import { estimateVbytes } from './coin-select.js';
import { CHANGE, scriptOwners, type DerivedAddress } from './hd.js';
import { firstSpent, walletOutputs, type WalletOutput } from './descendants.js';
import { ownedUtxos } from './send.js';
import { FeeRate } from '../bitcoin/fee-rate.js';

/** BIP125: a transaction whose input has a sequence below this may be replaced. */
const MAX_RBF_SEQUENCE = 0xfffffffd;

export interface BumpPlan {
  replaces: ReplacedPayment;
  spend: SpendPlan;
  owners: DerivedAddress[];
  /** The change left after the extra fee; null when it fell below the dust limit and went to the fee. */
  change: { address: string; value: bigint } | null;
  /** The replaced payment's outputs to this wallet (its change): held while the bump runs, so that no payment of the wallet's spends them. */
  holds: WalletOutput[];
}

export interface ReplacedPayment {
  txid: string;
  fee: bigint;
  vsize: number;
  outputs: { script: Uint8Array }[];
  /** Which of its outputs is its change. */
  changeVout: number;
}

const refuse = (message: string, hint: string) => new SwarmpayError('TX_CHECK_FAILED', message, { hint: `${hint}; nothing was signed or sent` });

export async function planBump(chain: ChainBackend, account: PublicNode, network: NetworkName, txid: string, feeRate: FeeRate): Promise<BumpPlan> {
  checkFeeRate(feeRate);
  if (!/^[0-9a-f]{64}$/.test(txid)) throw new SwarmpayError('USAGE', `"${txid}" is not a transaction id`, { hint: 'give the txid that `wallet send` printed (64 hex digits)' });
  const tx = await chain.getTransaction(txid);
  if (tx === null) throw new SwarmpayError('TX_NOT_FOUND', `transaction ${txid} is not known to the node`, { hint: 'check the txid; a replaced or dropped payment is no longer known' });
  if (tx.confirmations > 0) throw refuse(`transaction ${txid} is already confirmed`, 'nothing needs doing');
  if (tx.inputs.some((i) => i.sequence > MAX_RBF_SEQUENCE)) throw refuse(`transaction ${txid} does not signal replaceability (BIP125)`, 'only payments that signal it can be replaced');

  const { used } = await ownedUtxos(chain, account, network);
  const ownerOf = scriptOwners(used);
  const inputs: SpendPlan['inputs'] = [];
  const owners: DerivedAddress[] = [];
  for (const i of tx.inputs) {
    const prev = (await chain.getTransaction(i.txid))?.outputs[i.vout];
    const owner = prev && ownerOf(prev.script);
    if (!prev || !owner) throw refuse(`input ${i.txid}:${i.vout} of ${txid} is not this wallet's coin`, 'only the wallet\'s own payments can be bumped');
    inputs.push({ txid: i.txid, vout: i.vout, value: prev.value, script: prev.script });
    owners.push(owner);
  }
  const inSum = inputs.reduce((a, i) => a + i.value, 0n);
  const oldFee = inSum - tx.outputs.reduce((a, o) => a + o.value, 0n);
  const oldVsize = Transaction.fromHex(tx.hex).virtualSize();

  const isChange = tx.outputs.map((o) => ownerOf(o.script)?.chain === CHANGE);
  const changeAt = isChange.lastIndexOf(true);
  if (changeAt < 0) throw refuse(`transaction ${txid} has no change output to pay a higher fee from`, 'a payment of everything (--max) cannot be bumped this way');
  const changeOut = tx.outputs[changeAt]!;
  const changeOwner = ownerOf(changeOut.script)!;
  const replaces: ReplacedPayment = { txid, fee: oldFee, vsize: oldVsize, outputs: tx.outputs.map((o) => ({ script: o.script })), changeVout: changeAt };
  await refuseIfSpent(chain, network, replaces);

  const vsize = estimateVbytes(inputs.length, tx.outputs.map((o) => o.script));
  const fee = feeRate.feeFor(vsize);
  // BIP125 rules 3 and 4: more than the old fee, by at least the relay fee of the replacement itself.
  const least = oldFee + MIN_RELAY_FEE_RATE.feeFor(vsize);
  // And a rate above the old one's. Nodes compare whole sat/kvB rounded down; for a rate in
  // whole sat/kvB, being above the old rate rounded down is being above it exactly.
  const oldRate = FeeRate.paidBy(oldFee, BigInt(oldVsize));
  if (fee < least || feeRate.compare(oldRate) <= 0) {
    const atLeast = FeeRate.max(FeeRate.leastPaying(least, vsize), oldRate.justAbove());
    throw new SwarmpayError('INVALID_AMOUNT', `a replacement at ${feeRate} sat/vB would not outbid ${txid} (fee ${oldFee} sats, ${oldVsize} vB)`, {
      hint: `give --fee-rate ${atLeast} or more: a replacement must pay a higher rate and more fee, by its own relay fee`,
      details: { minFeeRate: atLeast.toString() },
    });
  }
  const extra = fee - oldFee;
  if (extra > changeOut.value) throw new SwarmpayError('INSUFFICIENT_FUNDS', `the change of ${changeOut.value} sats does not cover the extra fee of ${extra} sats`, { hint: 'give a lower --fee-rate' });
  const left = changeOut.value - extra;
  const keep = left >= dustThreshold(changeOut.script);
  const outputs = tx.outputs.flatMap((o, n) => (n !== changeAt ? [{ script: o.script, value: o.value }] : keep ? [{ script: o.script, value: left }] : []));
  const paid = tx.outputs.reduce((a, o, n) => (n === changeAt ? a : a + o.value), 0n);
  const spend: SpendPlan = { inputs, outputs, fee: inSum - outputs.reduce((a, o) => a + o.value, 0n), feeRate, paid };
  checkPlan(spend);
  return { replaces, spend, owners, change: keep ? { address: changeOwner.address, value: left } : null, holds: walletOutputs(txid, tx.outputs, ownerOf) };
}

/**
 * Refuses to replace a payment one of whose outputs a transaction spends: the replacement
 * would evict that transaction too (a send of the wallet's that spent the change, say).
 * Asked when planning, and again just before signing, for a spend the coin locks do not
 * stop (another copy of the wallet, a payee's own child).
 */
export async function refuseIfSpent(chain: ChainBackend, network: NetworkName, r: ReplacedPayment): Promise<void> {
  const spent = await firstSpent(chain, r.txid, r.outputs, network);
  if (spent === null) return;
  const which = spent.vout === r.changeVout ? 'its change' : `its output ${spent.vout}`;
  throw new SwarmpayError('TX_CHECK_FAILED', `${r.txid} cannot be replaced: ${which} is already spent by ${spent.by.txid}, and a replacement would cancel that payment too`, {
    hint: `bump ${spent.by.txid} instead if it is this wallet's (its fee lifts both), or wait; nothing was signed or sent`,
    details: { spentBy: spent.by.txid },
  });
}
