/**
 * Coin selection, pure: largest coins first until the payment and its fee are covered.
 * Change below the dust limit is not made; it goes to the fee, which is then still
 * checked against the caps before signing.
 */
import { SwarmpayError } from '../errors.js';
import type { Utxo } from '../chain/backend.js';
import type { SpendPlan } from '../bitcoin/spend.js';
import { P2WPKH_INPUT_VBYTES, TX_OVERHEAD_VBYTES, dustThreshold, outputVbytes } from '../bitcoin/policy.js';

/** Bitcoin's coinbase maturity: a block reward is spendable after 100 confirmations. */
const COINBASE_MATURITY = 100;

export interface Selection<C> {
  inputs: C[];
  fee: bigint;
  /** 0n when no change output is made. */
  change: bigint;
}

export function isSpendable(u: Utxo, minConf = 1): boolean {
  return u.coinbase ? u.confirmations >= COINBASE_MATURITY : u.confirmations >= minConf;
}

export function estimateVbytes(inputs: number, outputScripts: Uint8Array[]): bigint {
  return TX_OVERHEAD_VBYTES + BigInt(inputs) * P2WPKH_INPUT_VBYTES + outputScripts.reduce((a, s) => a + outputVbytes(s), 0n);
}

/** Sort order for spending: largest value first, then by outpoint so a selection is repeatable. */
export function largestFirst(a: { txid: string; vout: number; value: bigint }, b: { txid: string; vout: number; value: bigint }): number {
  return a.value === b.value ? `${a.txid}:${a.vout}`.localeCompare(`${b.txid}:${b.vout}`) : a.value > b.value ? -1 : 1;
}

/** What a payment pays: one output or several (a batch of channel fundings, say). */
export interface Payee {
  script: Uint8Array;
  value: bigint;
}

export function selectCoins<C extends { txid: string; vout: number; value: bigint }>(coins: C[], pays: Payee[], changeScript: Uint8Array, feeRate: bigint): Selection<C> {
  const amount = pays.reduce((a, p) => a + p.value, 0n);
  const payScripts = pays.map((p) => p.script);
  const sorted = [...coins].sort(largestFirst);
  const inputs: C[] = [];
  let sum = 0n;
  for (const c of sorted) {
    inputs.push(c);
    sum += c.value;
    const feeWithChange = estimateVbytes(inputs.length, [...payScripts, changeScript]) * feeRate;
    const change = sum - amount - feeWithChange;
    if (change >= dustThreshold(changeScript)) return { inputs, fee: feeWithChange, change };
    const feeNoChange = estimateVbytes(inputs.length, payScripts) * feeRate;
    if (sum >= amount + feeNoChange) return { inputs, fee: sum - amount, change: 0n };
  }
  const needed = amount + estimateVbytes(Math.max(1, sorted.length), payScripts) * feeRate;
  throw new SwarmpayError('INSUFFICIENT_FUNDS', `the wallet has ${sum} spendable sats; sending ${amount} sats needs about ${needed} with the fee`, {
    hint: 'send less, wait for unconfirmed coins to confirm, or fund the wallet',
    details: { spendable: sum.toString(), needed: needed.toString() },
  });
}

/** The spend plan for a payment from a selection: the payments first, in order, then change if any. */
export function paymentPlan(sel: Selection<Utxo>, pays: Payee[], changeScript: Uint8Array, feeRate: bigint): SpendPlan {
  return {
    inputs: sel.inputs.map(({ txid, vout, value, script }) => ({ txid, vout, value, script })),
    outputs: [...pays.map((p) => ({ script: p.script, value: p.value })), ...(sel.change > 0n ? [{ script: changeScript, value: sel.change }] : [])],
    fee: sel.fee,
    feeRate,
    paid: pays.reduce((a, p) => a + p.value, 0n),
  };
}
