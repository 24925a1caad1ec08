import { payments, networks } from 'bitcoinjs-lib';
import { selectCoins, estimateVbytes, paymentPlan, selectAll, selectSubtractingFee } from '../src/wallet/coin-select.js';
import { checkPlan } from '../src/bitcoin/spend.js';
import { SwarmpayError } from '../src/errors.js';
import type { Utxo } from '../src/chain/backend.js';
import { FeeRate } from '../src/bitcoin/fee-rate.js';

const script = (n: number) => payments.p2wpkh({ hash: Buffer.alloc(20, n), network: networks.regtest }).output!;
const pay = script(1);
const change = script(2);
const coin = (value: bigint, n = 0): Utxo => ({ txid: n.toString(16).padStart(64, '0'), vout: 0, value, script: script(3), address: '', confirmations: 6, coinbase: false });

describe('coin selection', () => {
  test('largest first, with change, and the fee is size × rate', () => {
    const sel = selectCoins([coin(10_000n, 1), coin(50_000n, 2), coin(20_000n, 3)], [{ script: pay, value: 30_000n }], change, FeeRate.ofSatPerVb(2n));
    expect(sel.inputs.map((c) => c.value)).toEqual([50_000n]);
    expect(sel.fee).toBe(estimateVbytes(1, [pay, change]) * 2n);
    expect(sel.change).toBe(50_000n - 30_000n - sel.fee);
  });

  test('change below dust is not made: it goes to the fee', () => {
    const fee = estimateVbytes(1, [pay]) * 1n;
    const sel = selectCoins([coin(30_000n + fee + 100n)], [{ script: pay, value: 30_000n }], change, FeeRate.ofSatPerVb(1n));
    expect(sel.change).toBe(0n);
    expect(sel.fee).toBe(fee + 100n);
  });

  test('several coins when one is not enough', () => {
    const sel = selectCoins([coin(10_000n, 1), coin(10_000n, 2), coin(10_000n, 3)], [{ script: pay, value: 25_000n }], change, FeeRate.ofSatPerVb(1n));
    expect(sel.inputs).toHaveLength(3);
  });

  test('not enough is INSUFFICIENT_FUNDS, saying what there is', () => {
    let err: SwarmpayError | undefined;
    try {
      selectCoins([coin(10_000n)], [{ script: pay, value: 10_000n }], change, FeeRate.ofSatPerVb(1n));
    } catch (e) {
      err = e as SwarmpayError;
    }
    expect(err?.code).toBe('INSUFFICIENT_FUNDS');
    expect(err?.details?.spendable).toBe('10000');
  });

  test('several payments at once: each its own output, in order, and the fee counts every one', () => {
    const pays = [1, 4, 5].map((n) => ({ script: script(n), value: 20_000n }));
    const sel = selectCoins([coin(40_000n, 1), coin(50_000n, 2)], pays, change, FeeRate.ofSatPerVb(2n));
    expect(sel.fee).toBe(estimateVbytes(2, [...pays.map((p) => p.script), change]) * 2n);
    const plan = paymentPlan(sel, pays, change, FeeRate.ofSatPerVb(2n));
    expect(plan.outputs.slice(0, 3)).toEqual(pays);
    expect(plan.paid).toBe(60_000n);
    expect(() => checkPlan(plan)).not.toThrow();
  });

  test('the plan balances: inputs = outputs + fee, and passes the pre-signing check', () => {
    const sel = selectCoins([coin(100_000n)], [{ script: pay, value: 30_000n }], change, FeeRate.ofSatPerVb(3n));
    const plan = paymentPlan(sel, [{ script: pay, value: 30_000n }], change, FeeRate.ofSatPerVb(3n));
    const out = plan.outputs.reduce((a, o) => a + o.value, 0n);
    expect(out + plan.fee).toBe(100_000n);
    expect(() => checkPlan(plan)).not.toThrow();
  });

  test('the pre-signing check refuses a plan that does not balance, pays dust or pays an absurd fee', () => {
    const sel = selectCoins([coin(100_000n)], [{ script: pay, value: 30_000n }], change, FeeRate.ofSatPerVb(3n));
    const plan = paymentPlan(sel, [{ script: pay, value: 30_000n }], change, FeeRate.ofSatPerVb(3n));
    expect(() => checkPlan({ ...plan, fee: plan.fee + 1n })).toThrow(expect.objectContaining({ code: 'TX_CHECK_FAILED' }));
    expect(() => checkPlan({ ...plan, outputs: [{ script: pay, value: 100n }, plan.outputs[1]!], fee: plan.fee + 29_900n })).toThrow(expect.objectContaining({ code: 'DUST_OUTPUT' }));
    const big = paymentPlan(selectCoins([coin(10_000_000n)], [{ script: pay, value: 1_000n }], change, FeeRate.ofSatPerVb(3n)), [{ script: pay, value: 1_000n }], change, FeeRate.ofSatPerVb(3n));
    expect(() => checkPlan({ ...big, outputs: [big.outputs[0]!, { ...big.outputs[1]!, value: big.outputs[1]!.value - 500_000n }], fee: big.fee + 500_000n })).toThrow(
      expect.objectContaining({ code: 'FEE_TOO_HIGH' }),
    );
    expect(() => checkPlan({ ...plan, inputs: [plan.inputs[0]!, plan.inputs[0]!] })).toThrow(expect.objectContaining({ code: 'TX_CHECK_FAILED' }));
  });

  test('--max: every coin, one output, no change, the fee from what is paid', () => {
    const coins = [coin(10_000n, 1), coin(50_000n, 2)];
    const sel = selectAll(coins, pay, FeeRate.ofSatPerVb(3n));
    expect(sel).toMatchObject({ change: 0n, fee: estimateVbytes(2, [pay]) * 3n });
    expect(sel.amount + sel.fee).toBe(60_000n);
    expect(() => checkPlan(paymentPlan(sel, [{ script: pay, value: sel.amount }], change, FeeRate.ofSatPerVb(3n)))).not.toThrow();
    expect(() => selectAll([], pay, FeeRate.ofSatPerVb(1n))).toThrow(expect.objectContaining({ code: 'INSUFFICIENT_FUNDS' }));
    expect(() => selectAll([coin(400n)], pay, FeeRate.ofSatPerVb(1n))).toThrow(expect.objectContaining({ code: 'INSUFFICIENT_FUNDS' }));
  });

  test('--subtract-fee: the wallet spends exactly the amount, the payee gets it less the fee', () => {
    const sel = selectSubtractingFee([coin(100_000n, 1)], { script: pay, value: 30_000n }, change, FeeRate.ofSatPerVb(2n));
    expect(sel.fee).toBe(estimateVbytes(1, [pay, change]) * 2n);
    expect([sel.amount, sel.change]).toEqual([30_000n - sel.fee, 70_000n]);
    // Change below dust goes to the fee; the payee still gets the amount less the fee of a one-output transaction.
    const exact = selectSubtractingFee([coin(30_100n, 1)], { script: pay, value: 30_000n }, change, FeeRate.ofSatPerVb(2n));
    expect(exact).toMatchObject({ change: 0n, amount: 30_000n - estimateVbytes(1, [pay]) * 2n, fee: estimateVbytes(1, [pay]) * 2n + 100n });
    expect(() => selectSubtractingFee([coin(10_000n)], { script: pay, value: 20_000n }, change, FeeRate.ofSatPerVb(1n))).toThrow(expect.objectContaining({ code: 'INSUFFICIENT_FUNDS' }));
  });
});
