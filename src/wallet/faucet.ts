/**
 * swarmpay's regtest faucet: one well-known key that the embedded node mines to. Its
 * coins are worthless test coins, so the key is public by design; it is refused on
 * every other network.
 */
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import type { ECPairInterface } from 'ecpair';
import { ecc } from '../bitcoin/ecc.js';
import { SwarmpayError } from '../errors.js';
import type { ChainBackend } from '../chain/backend.js';
import { addressToScript } from '../bitcoin/address.js';
import { bitcoinjsNetwork } from '../bitcoin/network.js';
import { signPlan, type SignedTx } from '../bitcoin/spend.js';
import { FeeRate } from '../bitcoin/fee-rate.js';
import { isSpendable, paymentPlan, selectCoins } from './coin-select.js';

let signer: ECPairInterface | null = null;

/**
 * The faucet's key as a signer, made when the faucet first pays: ECPairFactory checks the
 * curve library with a dozen operations first (about 10 ms), which every command that reaches
 * a node paid for the faucet's address alone.
 */
export function faucetKey(): ECPairInterface {
  if (signer === null) {
    const { ECPairFactory } = createRequire(import.meta.url)('ecpair') as typeof import('ecpair');
    const faucetPrivate = createHash('sha256').update('swarmpay regtest faucet v1').digest();
    signer = ECPairFactory(ecc()).fromPrivateKey(faucetPrivate, { network: bitcoinjsNetwork('regtest') });
  }
  return signer;
}

/**
 * The P2WPKH address of the faucet's key, written out: every command that reaches a node names
 * it, and deriving it cost each of them a few ms (test/cli-fast-start.test.ts checks it).
 */
export const FAUCET_ADDRESS = 'bcrt1qcnq3lzvcussh7qqf0aavnsnnkmxr9lkfyh5jde';

/** Regtest halves the 50 BTC block reward every 150 blocks. */
export function regtestSubsidy(height: number): bigint {
  const halvings = Math.floor(height / 150);
  return halvings >= 64 ? 0n : 5_000_000_000n >> BigInt(halvings);
}

/** Pays `address` from the faucet's mature coinbase outputs and broadcasts it. */
export async function faucetPay(chain: ChainBackend, address: string, amount: bigint, feeRate = FeeRate.ofSatPerVb(2n)): Promise<SignedTx> {
  if (chain.network !== 'regtest') throw new SwarmpayError('NOT_REGTEST', 'the faucet exists on regtest only');
  const toScript = addressToScript(address, 'regtest');
  const coins = (await chain.utxos([FAUCET_ADDRESS])).filter((u) => isSpendable(u));
  const pays = [{ script: toScript, value: amount }];
  const change = addressToScript(FAUCET_ADDRESS, 'regtest');
  const plan = paymentPlan(selectCoins(coins, pays, change, feeRate), pays, change, feeRate);
  const signed = signPlan(plan, plan.inputs.map(() => faucetKey()), 'regtest');
  await chain.broadcast(signed.hex);
  return signed;
}
