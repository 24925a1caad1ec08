/**
 * What the contract templates (channel.ts, htlc.ts) share: reading a script number back,
 * the one-input spend of a P2WSH output, its size, and the sweep of the whole output to
 * one script by one key (the channel refund, the HTLC claim and refund). Fees and dust are
 * checked before anything is signed; whether the spend is valid is the node's call.
 */
import { opcodes, payments, script as bscript, Transaction } from 'bitcoinjs-lib';
import { ecc, signDigest } from './ecc.js';
import { SwarmpayError } from '../errors.js';
import type { Outpoint } from './outpoint.js';
import { bitcoinjsNetwork, type NetworkName } from './network.js';
import { checkAbsoluteFee, checkFeeRate, dustThreshold, outputVbytes, payoutType } from './policy.js';
import type { FeeRate } from './fee-rate.js';

/** From this value on, a locktime is a Unix time rather than a block height. */
const LOCKTIME_THRESHOLD = 500_000_000;
export const TX_VERSION = 2;
/** Not final, so nLockTime (and with it CLTV) is enforced; not replaceable. */
export const LOCKTIME_SEQUENCE = 0xfffffffe;
/** A DER signature with low S (r up to 33 bytes, s up to 32) plus its sighash byte. */
export const MAX_SIG_BYTES = 72;

export function refuse(message: string): SwarmpayError {
  return new SwarmpayError('TX_CHECK_FAILED', message, { hint: 'this is a safety check; nothing was signed or sent' });
}

/** A block height as a template takes it: a positive integer below the Unix-time range. */
export function isHeight(h: number): boolean {
  return Number.isInteger(h) && h > 0 && h < LOCKTIME_THRESHOLD;
}

/** A script number chunk (OP_1..OP_16 or a push of at most 4 bytes) as an integer; null if it is neither. */
export function scriptInt(chunk: number | Uint8Array): number | null {
  if (typeof chunk === 'number') return chunk >= opcodes.OP_1 && chunk <= opcodes.OP_16 ? chunk - opcodes.OP_1 + 1 : null;
  return chunk.length <= 4 ? bscript.number.decode(chunk, 4, false) : null;
}

/** Hex shown of a refused script: enough to recognise it, short enough for one line. */
const SHOWN_SCRIPT_BYTES = 20;

/**
 * Refuses a script that is not a standard payout: nodes would not relay an output paying
 * it, so a close or sweep paying it could never confirm.
 */
export function checkPayoutScript(s: Uint8Array, what: string): void {
  if (payoutType(s) !== null) return;
  const shown = Buffer.from(s.subarray(0, SHOWN_SCRIPT_BYTES)).toString('hex') + (s.length > SHOWN_SCRIPT_BYTES ? '…' : '');
  const size = `${s.length} byte${s.length === 1 ? '' : 's'}`;
  throw refuse(`the ${what} script (${s.length === 0 ? size : `${size}: ${shown}`}) is not a standard payout: use a P2WPKH, P2WSH, P2TR, P2PKH or P2SH address`);
}

/** A 64-byte compact signature (r||s, low S) as a witness item with SIGHASH_ALL. */
export function witnessSig(sig64: Uint8Array): Uint8Array {
  if (sig64.length !== 64) throw refuse(`a signature of ${sig64.length} bytes is not a 64-byte compact signature`);
  return bscript.signature.encode(sig64, Transaction.SIGHASH_ALL);
}

export function outpointBytes(o: Outpoint): Buffer {
  if (!/^[0-9a-f]{64}$/i.test(o.txid) || !Number.isInteger(o.vout) || o.vout < 0 || o.vout > 0xffffffff) throw refuse(`${o.txid}:${o.vout} is not an outpoint`);
  const b = Buffer.alloc(36);
  Buffer.from(o.txid, 'hex').reverse().copy(b);
  b.writeUInt32LE(o.vout, 32);
  return b;
}

/** The P2WSH output of a witness script: its output script and address. */
export function p2wshOutput(witnessScript: Buffer, network: NetworkName): { script: Buffer; address: string; witnessScript: Buffer } {
  const p2wsh = payments.p2wsh({ redeem: { output: witnessScript }, network: bitcoinjsNetwork(network) });
  return { script: Buffer.from(p2wsh.output!), address: p2wsh.address!, witnessScript };
}

/** An unsigned spend of one P2WSH output. */
export function singleSpend(funding: Outpoint, sequence: number, locktime: number, outputs: { script: Uint8Array; value: bigint }[]): Transaction {
  const tx = new Transaction();
  tx.version = TX_VERSION;
  tx.locktime = locktime;
  tx.addInput(outpointBytes(funding).subarray(0, 32), funding.vout, sequence);
  for (const o of outputs) tx.addOutput(o.script, o.value);
  return tx;
}

/** vbytes of a spend of one P2WSH output, its witness items given by length. */
export function spendVbytes(witnessItems: number[], outputScripts: Uint8Array[]): bigint {
  // version, input count, outpoint with empty scriptSig and sequence, output count, outputs, locktime
  const base = 4n + 1n + 41n + 1n + outputScripts.reduce((sum, s) => sum + outputVbytes(s), 0n) + 4n;
  // segwit marker and flag, item count, then each item after its one-byte length
  const witness = 2n + 1n + witnessItems.reduce((sum, n) => sum + 1n + BigInt(n), 0n);
  return (4n * base + witness + 3n) / 4n;
}

export interface Sweep {
  funding: Outpoint;
  /** The output's value and witness script. */
  value: bigint;
  witnessScript: Uint8Array;
  /** nSequence and nLockTime: what the branch's timelock needs, if any. */
  sequence: number;
  locktime: number;
  toScript: Uint8Array;
  feeRate: FeeRate;
  priv: Uint8Array;
  /** The key the branch checks: the signing key must be it. */
  pubkey: Uint8Array;
  /** The witness items between the signature and the witness script (the branch selector, a preimage). */
  branch: Uint8Array[];
  /** Sent as the error when the key is not the branch's. */
  wrongKey: string;
}

/** Signs a spend of a whole P2WSH output to one script, the fee checked first. */
export function sweep(s: Sweep): { hex: string; txid: string; fee: bigint; value: bigint } {
  checkFeeRate(s.feeRate);
  checkPayoutScript(s.toScript, 'payout');
  const fee = s.feeRate.feeFor(spendVbytes([MAX_SIG_BYTES, ...s.branch.map((b) => b.length), s.witnessScript.length], [s.toScript]));
  const value = s.value - fee;
  const dust = dustThreshold(s.toScript);
  if (value < dust) {
    throw new SwarmpayError('DUST_OUTPUT', `spending ${s.value} sats leaves ${value} after a ${fee} sat fee, below the dust limit of ${dust} sats`, { hint: 'lower the fee rate' });
  }
  checkAbsoluteFee(fee, value);
  const pub = ecc().pointFromScalar(s.priv, true);
  if (pub === null || !Buffer.from(pub).equals(s.pubkey)) throw refuse(s.wrongKey);
  const tx = singleSpend(s.funding, s.sequence, s.locktime, [{ script: s.toScript, value }]);
  const sig = signDigest(tx.hashForWitnessV0(0, s.witnessScript, s.value, Transaction.SIGHASH_ALL), s.priv);
  tx.setWitness(0, [witnessSig(sig), ...s.branch, s.witnessScript]);
  return { hex: tx.toHex(), txid: tx.getId(), fee, value };
}

/**
 * The funding transaction last parsed: one transaction funds a batch of channels, each of
 * which brings it along (parsing two hundred outputs once, not once per channel).
 */
let lastParsed: { hex: string; tx: Transaction; txid: string } | null = null;

/** Checks that output `vout` of a funding transaction pays `script` exactly `value` sats. */
export function checkFundingOutput(fundingTxHex: string, vout: number, script: Uint8Array, value: bigint, address: string, what: string): Outpoint {
  const mismatch = (message: string, cause?: unknown) => new SwarmpayError('FUNDING_MISMATCH', message, { hint: `the ${what} is not accepted; nothing was signed`, cause });
  if (lastParsed?.hex !== fundingTxHex) {
    try {
      const parsed = Transaction.fromHex(fundingTxHex);
      lastParsed = { hex: fundingTxHex, tx: parsed, txid: parsed.getId() };
    } catch (e) {
      throw mismatch('the funding transaction does not parse', e);
    }
  }
  const { tx, txid } = lastParsed;
  const out = tx.outs[vout];
  if (out === undefined) throw mismatch(`the funding transaction has no output ${vout}`);
  if (!Buffer.from(script).equals(out.script)) throw mismatch(`output ${vout} of the funding transaction does not pay the ${what} address ${address}`);
  if (out.value !== value) throw mismatch(`output ${vout} of the funding transaction holds ${out.value} sats, not the ${what}'s ${value}`);
  return { txid, vout };
}
