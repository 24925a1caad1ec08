/**
 * Coin selection, pure: largest coins first until the payment and its fee are covered.
 * Change below the dust limit is not made; it goes to the fee, which is then still
 * checked against the caps before signing.
 */
import { SwarmpayError } from '../errors.js';
import type { Utxo } from '../chain/backend.js';
import type { SpendPlan } from '../bitcoin/spend.js';
import { P2WPKH_INPUT_VBYTES, TX_OVERHEAD_VBYTES, dustThreshold, outputVbytes } from '../bitcoin/policy.js';
import type { FeeRate } from '../bitcoin/fee-rate.js';

/** Bitcoin's coinbase maturity: a block reward is spendable after 100 confirmations. */
export const COINBASE_MATURITY = 100;

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

export function selectCoins<C extends { txid: string; vout: number; value: bigint }>(coins: C[], pays: Payee[], changeScript: Uint8Array, feeRate: FeeRate): Selection<C> {
  const amount = pays.reduce((a, p) => a + p.value, 0n);
  const payScripts = pays.map((p) => p.script);
  const sorted = [...coins].sort(largestFirst);
  const inputs: C[] = [];
  let sum = 0n;
  for (const c of sorted) {
    inputs.push(c);
    sum += c.value;
    const feeWithChange = feeRate.feeFor(estimateVbytes(inputs.length, [...payScripts, changeScript]));
    const change = sum - amount - feeWithChange;
    if (change >= dustThreshold(changeScript)) return { inputs, fee: feeWithChange, change };
    const feeNoChange = feeRate.feeFor(estimateVbytes(inputs.length, payScripts));
    if (sum >= amount + feeNoChange) return { inputs, fee: sum - amount, change: 0n };
  }
  const needed = amount + feeRate.feeFor(estimateVbytes(Math.max(1, sorted.length), payScripts));
  throw new SwarmpayError('INSUFFICIENT_FUNDS', `the wallet has ${sum} spendable sats; sending ${amount} sats needs about ${needed} with the fee`, {
    hint: 'send less, wait for unconfirmed coins to confirm, or fund the wallet',
    details: { spendable: sum.toString(), needed: needed.toString() },
  });
}

/** The spend plan for a payment from a selection: the payments first, in order, then change if any. */
export function paymentPlan(sel: Selection<Utxo>, pays: Payee[], changeScript: Uint8Array, feeRate: FeeRate): SpendPlan {
  return {
    inputs: sel.inputs.map(({ txid, vout, value, script }) => ({ txid, vout, value, script })),
    outputs: [...pays.map((p) => ({ script: p.script, value: p.value })), ...(sel.change > 0n ? [{ script: changeScript, value: sel.change }] : [])],
    fee: sel.fee,
    feeRate,
    paid: pays.reduce((a, p) => a + p.value, 0n),
  };
}

/** A selection that sets what the payee gets: `amount`, after the fee is taken from it. */
export interface PayeeSelection<C> extends Selection<C> {
  amount: bigint;
}

/** `send --max`: every coin to one payee, less the fee; no change. */
export function selectAll<C extends { value: bigint }>(coins: C[], payScript: Uint8Array, feeRate: FeeRate): PayeeSelection<C> {
  if (coins.length === 0) throw new SwarmpayError('INSUFFICIENT_FUNDS', 'the wallet has no spendable coins', { hint: 'wait for unconfirmed coins to confirm, or fund the wallet', details: { spendable: '0' } });
  const sum = coins.reduce((a, c) => a + c.value, 0n);
  const fee = feeRate.feeFor(estimateVbytes(coins.length, [payScript]));
  return { inputs: [...coins], fee, change: 0n, amount: payeeGets(sum, fee, payScript) };
}

/**
 * `send --subtract-fee`: coins for `pay.value`, largest first, the fee taken out of what the
 * payee gets. Change below the dust limit goes to the fee, as in selectCoins.
 */
export function selectSubtractingFee<C extends { txid: string; vout: number; value: bigint }>(coins: C[], pay: Payee, changeScript: Uint8Array, feeRate: FeeRate): PayeeSelection<C> {
  const inputs: C[] = [];
  let sum = 0n;
  for (const c of [...coins].sort(largestFirst)) {
    inputs.push(c);
    sum += c.value;
    if (sum < pay.value) continue;
    const change = sum - pay.value;
    if (change >= dustThreshold(changeScript)) {
      const fee = feeRate.feeFor(estimateVbytes(inputs.length, [pay.script, changeScript]));
      return { inputs, fee, change, amount: payeeGets(pay.value, fee, pay.script) };
    }
    const fee = feeRate.feeFor(estimateVbytes(inputs.length, [pay.script]));
    return { inputs, fee: fee + change, change: 0n, amount: payeeGets(pay.value, fee, pay.script) };
  }
  throw new SwarmpayError('INSUFFICIENT_FUNDS', `the wallet has ${sum} spendable sats; sending ${pay.value} sats needs that much`, {
    hint: 'send less, wait for unconfirmed coins to confirm, or fund the wallet',
    details: { spendable: sum.toString(), needed: pay.value.toString() },
  });
}

/** What is left for the payee of `value` once `fee` is taken out: refused below the dust limit. */
function payeeGets(value: bigint, fee: bigint, payScript: Uint8Array): bigint {
  const dust = dustThreshold(payScript);
  if (value - fee < dust) {
    throw new SwarmpayError('INSUFFICIENT_FUNDS', `${value} sats less the fee of ${fee} sats leaves ${value - fee} sats, below the dust limit of ${dust} sats`, {
      hint: 'send more, or fund the wallet',
      details: { spendable: value.toString(), needed: (fee + dust).toString() },
    });
  }
  return value - fee;
}
