/**
 * The last check before a wallet spend leaves: the signed transaction's fee against its
 * plan's rate at its real size. Plans are sized from the longest signatures, so a plan one
 * sat short can only come from a bug; it is caught here, before anything is broadcast.
 */
import { payments, networks } from 'bitcoinjs-lib';
import { signPlan, type SpendPlan } from '../src/bitcoin/spend.js';
import { FeeRate } from '../src/bitcoin/fee-rate.js';
import { faucetKey } from '../src/wallet/faucet.js';
import { thrown } from './helpers/expect.js';

describe('signPlan: the fee against the rate at the signed size', () => {
  const own = payments.p2wpkh({ pubkey: Buffer.from(faucetKey().publicKey), network: networks.regtest }).output!;
  const pay = payments.p2wpkh({ hash: Buffer.alloc(20, 7), network: networks.regtest }).output!;
  const rate = FeeRate.ofSatPerVb(10n);
  /** One coin of 100,000 sats to `pay`, less `fee`. */
  const plan = (fee: bigint): SpendPlan => ({ inputs: [{ txid: 'ab'.repeat(32), vout: 0, value: 100_000n, script: own }], outputs: [{ script: pay, value: 100_000n - fee }], fee, feeRate: rate, paid: 100_000n - fee });
  const sign = (fee: bigint) => signPlan(plan(fee), [faucetKey()], 'regtest');

  test('exactly the rate at the signed size is signed; one sat less is refused', () => {
    const vsize = BigInt(sign(5_000n).vsize);
    const due = rate.feeFor(vsize);
    expect(sign(due).fee).toBe(due);
    const e = thrown(() => sign(due - 1n));
    expect(e.code).toBe('TX_CHECK_FAILED');
    expect(e.message).toBe(`fee ${due - 1n} sats is below the ${due} sats that 10 sat/vB asks for the signed ${vsize} vB`);
    expect(e.hint).toMatch(/nothing was sent/);
  });
});
