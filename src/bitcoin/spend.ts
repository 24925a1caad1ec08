/**
 * The one place swarmpay signs a wallet spend: a plan (inputs that each say what they
 * spend, outputs, and the explicit fee) is checked, then signed through a PSBT, then
 * checked again as the final transaction. Nothing is signed that fails a check.
 */
import { Psbt } from 'bitcoinjs-lib';
import { ecc } from './ecc.js';
import { SwarmpayError } from '../errors.js';
import { bitcoinjsNetwork, type NetworkName } from './network.js';
import { checkAbsoluteFee, checkFeeRate, dustThreshold, MIN_RELAY_FEE_RATE } from './policy.js';
import type { FeeRate } from './fee-rate.js';

/** BIP125: every input signals replaceability, so a stuck payment can be fee-bumped. */
const RBF_SEQUENCE = 0xfffffffd;

export interface SpendSigner {
  publicKey: Uint8Array;
  sign(hash: Uint8Array, lowR?: boolean): Uint8Array;
}

interface PlannedInput {
  txid: string;
  vout: number;
  value: bigint;
  /** The output script being spent (P2WPKH). */
  script: Uint8Array;
}

interface PlannedOutput {
  script: Uint8Array;
  value: bigint;
}

export interface SpendPlan {
  inputs: PlannedInput[];
  outputs: PlannedOutput[];
  fee: bigint;
  feeRate: FeeRate;
  /** The outputs the user asked for, as opposed to change: the fee cap is measured against these. */
  paid: bigint;
}

export interface SignedTx {
  txid: string;
  hex: string;
  vsize: number;
  fee: bigint;
}

/** Checks a plan's arithmetic and policy before anything is signed. */
export function checkPlan(plan: SpendPlan): void {
  const fail = (msg: string): never => {
    throw new SwarmpayError('TX_CHECK_FAILED', msg, { hint: 'this is a safety check; nothing was signed or sent' });
  };
  if (plan.inputs.length === 0) fail('the transaction spends nothing');
  if (plan.outputs.length === 0) fail('the transaction pays nothing');
  const seen = new Set<string>();
  for (const i of plan.inputs) {
    const key = `${i.txid}:${i.vout}`;
    if (seen.has(key)) fail(`input ${key} is spent twice`);
    seen.add(key);
    if (i.value <= 0n) fail(`input ${key} has no value`);
  }
  plan.outputs.forEach((o, n) => {
    const dust = dustThreshold(o.script);
    if (o.value < dust) {
      throw new SwarmpayError('DUST_OUTPUT', `output ${n} of ${o.value} sats is below the dust limit of ${dust} sats`, {
        hint: `send at least ${dust} sats`,
      });
    }
  });
  const inSum = plan.inputs.reduce((a, i) => a + i.value, 0n);
  const outSum = plan.outputs.reduce((a, o) => a + o.value, 0n);
  if (inSum !== outSum + plan.fee) fail(`inputs (${inSum}) do not equal outputs (${outSum}) plus fee (${plan.fee})`);
  if (plan.fee <= 0n) fail('the fee must be positive');
  checkFeeRate(plan.feeRate);
  checkAbsoluteFee(plan.fee, plan.paid);
}

/**
 * Signs a checked plan, input n with signers[n]; the result is checked again for its fee
 * rate against its real size.
 */
export function signPlan(plan: SpendPlan, signers: SpendSigner[], network: NetworkName): SignedTx {
  checkPlan(plan);
  if (signers.length !== plan.inputs.length) throw new SwarmpayError('INTERNAL', `${plan.inputs.length} inputs but ${signers.length} signers`);
  const psbt = new Psbt({ network: bitcoinjsNetwork(network) });
  for (const i of plan.inputs) {
    psbt.addInput({ hash: i.txid, index: i.vout, sequence: RBF_SEQUENCE, witnessUtxo: { script: i.script, value: i.value } });
  }
  for (const o of plan.outputs) psbt.addOutput({ script: o.script, value: o.value });
  signers.forEach((signer, n) => psbt.signInput(n, signer));
  const valid = psbt.validateSignaturesOfAllInputs((pubkey, msghash, signature) => ecc().verify(msghash, pubkey, signature));
  if (!valid) throw new SwarmpayError('INTERNAL', 'a signature we just made does not verify');
  psbt.finalizeAllInputs();
  const tx = psbt.extractTransaction();
  const vsize = tx.virtualSize();
  if (plan.fee < MIN_RELAY_FEE_RATE.feeFor(BigInt(vsize))) {
    throw new SwarmpayError('TX_CHECK_FAILED', `fee ${plan.fee} is below the relay minimum for ${vsize} vB`, { hint: 'raise --fee-rate' });
  }
  // Plans are sized from upper bounds of each input, so the signed transaction is never larger
  // than planned: a fee short of its own rate here is a bug, caught before it is broadcast.
  const due = plan.feeRate.feeFor(BigInt(vsize));
  if (plan.fee < due) {
    throw new SwarmpayError('TX_CHECK_FAILED', `fee ${plan.fee} sats is below the ${due} sats that ${plan.feeRate} sat/vB asks for the signed ${vsize} vB`, { hint: 'this is a bug in swarmpay\'s fee arithmetic, please report it; nothing was sent' });
  }
  return { txid: tx.getId(), hex: tx.toHex(), vsize, fee: plan.fee };
}
