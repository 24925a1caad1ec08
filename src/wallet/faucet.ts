/**
 * swarmpay's regtest faucet: one well-known key that the embedded node mines to. Its
 * coins are worthless test coins, so the key is public by design; it is refused on
 * every other network.
 */
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { payments } from 'bitcoinjs-lib';
import type { ECPairInterface } from 'ecpair';
import { ecc } from '../bitcoin/ecc.js';
import { SwarmpayError } from '../errors.js';
import type { ChainBackend } from '../chain/backend.js';
import { addressToScript } from '../bitcoin/address.js';
import { bitcoinjsNetwork } from '../bitcoin/network.js';
import { signPlan, type SignedTx } from '../bitcoin/spend.js';
import { FeeRate } from '../bitcoin/fee-rate.js';
import { isSpendable, paymentPlan, selectCoins } from './coin-select.js';
import { basePoint } from './xpub.js';

const FAUCET_PRIVATE = createHash('sha256').update('swarmpay regtest faucet v1').digest();
// Without tiny-secp256k1: every command that reaches a node needs the faucet's address, few its signatures.
const p2wpkh = payments.p2wpkh({ pubkey: basePoint(FAUCET_PRIVATE).toBytes(true), network: bitcoinjsNetwork('regtest') });

let signer: ECPairInterface | null = null;

/**
 * The faucet's key as a signer, made when the faucet first pays: ECPairFactory checks the
 * curve library with a dozen operations first (about 10 ms), which every command that reaches
 * a node paid for the faucet's address alone.
 */
export function faucetKey(): ECPairInterface {
  if (signer === null) {
    const { ECPairFactory } = createRequire(import.meta.url)('ecpair') as typeof import('ecpair');
    signer = ECPairFactory(ecc()).fromPrivateKey(FAUCET_PRIVATE, { network: bitcoinjsNetwork('regtest') });
  }
  return signer;
}

export const FAUCET_ADDRESS = p2wpkh.address!;
const FAUCET_SCRIPT = p2wpkh.output!;

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
  const plan = paymentPlan(selectCoins(coins, pays, FAUCET_SCRIPT, feeRate), pays, FAUCET_SCRIPT, feeRate);
  const signed = signPlan(plan, plan.inputs.map(() => faucetKey()), 'regtest');
  await chain.broadcast(signed.hex);
  return signed;
}
