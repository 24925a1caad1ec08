/**
 * The Bitcoin side of the unidirectional payment channel (DESIGN.md "Payment channel"):
 * the funding script, built from named terms and recognised back; the close transaction
 * for each cumulative amount and its sighash, which every payment signs and verifies;
 * and the payer's refund after the expiry. Whether a spend is valid is the node's call.
 */
import { hash } from 'node:crypto';
import { opcodes, script as bscript, Transaction } from 'bitcoinjs-lib';
import { isCompressedPoint, signDigest, verifyDigest } from './ecc.js';
import type { Outpoint } from './outpoint.js';
import { MAX_MONEY } from './amount.js';
import type { NetworkName } from './network.js';
import { dustThreshold, outputVbytes } from './policy.js';
import { LOCKTIME_SEQUENCE, MAX_SIG_BYTES, TX_VERSION, checkFundingOutput, checkPayoutScript, isHeight, outpointBytes, p2wshOutput, refuse, scriptInt, singleSpend, spendVbytes, sweep, witnessSig } from './p2wsh-spend.js';
import type { FeeRate } from './fee-rate.js';


export interface ChannelTerms {
  /** 33-byte compressed public keys. */
  payerPubkey: Uint8Array;
  payeePubkey: Uint8Array;
  /** Absolute block height after which the payer alone can spend (CLTV). */
  expiry: number;
  /** Sats in the funding output. */
  capacity: bigint;
  /** The close transaction's fee, paid out of the payee's share. */
  closeFee: bigint;
  /** Where the payee is paid at close. */
  payeeScript: Uint8Array;
  /** Where the payer's remainder goes at close. */
  payerScript: Uint8Array;
}

/** The close has no locktime; a state both sides signed cannot be re-signed, so there is nothing to signal. */
const CLOSE_SEQUENCE = 0xffffffff;
/** The template with two 33-byte keys and the longest expiry push (4 bytes for a height below 500,000,000). */
const MAX_WITNESS_SCRIPT_BYTES = 80;

function templateProblem(payerPubkey: Uint8Array, payeePubkey: Uint8Array, expiry: number): string | undefined {
  if (!isCompressedPoint(payerPubkey)) return 'the payer key is not a compressed public key';
  if (!isCompressedPoint(payeePubkey)) return 'the payee key is not a compressed public key';
  if (!isHeight(expiry)) return `the expiry ${expiry} is not a block height`;
  return undefined;
}

/** The funding output's witness script. */
export function channelScript(t: Pick<ChannelTerms, 'payerPubkey' | 'payeePubkey' | 'expiry'>): Buffer {
  const problem = templateProblem(t.payerPubkey, t.payeePubkey, t.expiry);
  if (problem !== undefined) throw refuse(problem);
  return Buffer.from(
    bscript.compile([
      opcodes.OP_IF, t.payeePubkey, opcodes.OP_CHECKSIGVERIFY,
      opcodes.OP_ELSE, bscript.number.encode(t.expiry), opcodes.OP_CHECKLOCKTIMEVERIFY, opcodes.OP_DROP,
      opcodes.OP_ENDIF, t.payerPubkey, opcodes.OP_CHECKSIG,
    ]),
  );
}

/** The terms a channel script was built from, or null if it is not exactly one we would build. */
export function parseChannelScript(script: Uint8Array): { payerPubkey: Buffer; payeePubkey: Buffer; expiry: number } | null {
  const chunks = bscript.decompile(script);
  if (chunks === null || chunks.length !== 10) return null;
  const [, payee, , , expiryChunk, , , , payer] = chunks;
  if (!(payee instanceof Uint8Array) || !(payer instanceof Uint8Array) || expiryChunk === undefined) return null;
  const expiry = scriptInt(expiryChunk);
  if (expiry === null || templateProblem(payer, payee, expiry) !== undefined) return null;
  const parsed = { payerPubkey: Buffer.from(payer), payeePubkey: Buffer.from(payee), expiry };
  // decompile forgives what spending would not (a non-minimal push or number) and the
  // opcodes are unchecked so far: only the exact bytes we would build are accepted.
  return channelScript(parsed).equals(script) ? parsed : null;
}

/** The witness script of valid terms: every transaction below starts from it. */
function witnessScriptOf(t: ChannelTerms): Buffer {
  if (t.capacity <= 0n || t.capacity > MAX_MONEY) throw refuse(`a channel capacity of ${t.capacity} sats is impossible`);
  if (t.closeFee < 0n) throw refuse(`a close fee of ${t.closeFee} sats is negative`);
  checkPayoutScript(t.payeeScript, 'payee');
  checkPayoutScript(t.payerScript, 'payer');
  return channelScript(t);
}

export function channelOutput(t: ChannelTerms, network: NetworkName): { script: Buffer; address: string; witnessScript: Buffer } {
  return p2wshOutput(witnessScriptOf(t), network);
}

/** Checks that a funding transaction's output is the channel's: right script, right amount. */
export function checkFunding(t: ChannelTerms, network: NetworkName, fundingTxHex: string, vout: number): Outpoint {
  const want = channelOutput(t, network);
  return checkFundingOutput(fundingTxHex, vout, want.script, t.capacity, want.address, 'channel');
}

/**
 * The close outputs for a cumulative amount: the payee's (cumulative - closeFee) first,
 * then the payer's remainder. An output below the dust limit is left out and its value
 * goes to the fee, as nodes would not relay it: the first micropayments of a channel are
 * states the payee signs for but would not close on (see closablePayment).
 */
export function stateOutputs(t: ChannelTerms, cumulative: bigint): { script: Uint8Array; value: bigint }[] {
  if (cumulative < 0n || cumulative > t.capacity) throw refuse(`a state of ${cumulative} sats is outside the channel's 0..${t.capacity}`);
  const outs = [
    { script: t.payeeScript, value: cumulative - t.closeFee },
    { script: t.payerScript, value: t.capacity - cumulative },
  ].filter((o) => o.value >= dustThreshold(o.script));
  if (outs.length === 0) throw refuse(`a state of ${cumulative} sats leaves no output above the dust limit`);
  return outs;
}

/** The least a state must pay for its close to pay the payee anything: the close fee and a non-dust output. */
export function closablePayment(t: ChannelTerms): bigint {
  return t.closeFee + dustThreshold(t.payeeScript);
}

function sha256d(data: Uint8Array): Buffer {
  return hash('sha256', hash('sha256', data, 'buffer'), 'buffer');
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
}

/**
 * The BIP143 sighash (SIGHASH_ALL) of the close for each cumulative amount. Only the
 * outputs depend on the amount, so the rest of the preimage is laid out once per channel.
 */
export class StateHasher {
  private readonly preimage: Buffer;
  private readonly hashOutputsAt: number;
  private readonly outputs: Buffer;

  constructor(private readonly terms: ChannelTerms, funding: Outpoint) {
    const witnessScript = witnessScriptOf(terms);
    const prevout = outpointBytes(funding);
    const sequence = u32(CLOSE_SEQUENCE);
    const amount = Buffer.alloc(8);
    amount.writeBigUInt64LE(terms.capacity);
    const head = Buffer.concat([u32(TX_VERSION), sha256d(prevout), sha256d(sequence), prevout, Buffer.from([witnessScript.length]), witnessScript, amount, sequence]);
    this.hashOutputsAt = head.length;
    this.preimage = Buffer.concat([head, Buffer.alloc(32), u32(0), u32(Transaction.SIGHASH_ALL)]);
    this.outputs = Buffer.alloc(Number(outputVbytes(terms.payeeScript) + outputVbytes(terms.payerScript)));
  }

  sighash(cumulative: bigint): Buffer {
    let at = 0;
    for (const o of stateOutputs(this.terms, cumulative)) {
      at = this.outputs.writeBigUInt64LE(o.value, at);
      at = this.outputs.writeUInt8(o.script.length, at);
      this.outputs.set(o.script, at);
      at += o.script.length;
    }
    sha256d(this.outputs.subarray(0, at)).copy(this.preimage, this.hashOutputsAt);
    return sha256d(this.preimage);
  }
}

/** A 64-byte compact signature (r||s, low S). */
export function signState(hash: Uint8Array, priv: Uint8Array): Buffer {
  return Buffer.from(signDigest(hash, priv));
}

export function verifyState(hash: Uint8Array, pub: Uint8Array, sig64: Uint8Array): boolean {
  return verifyDigest(hash, pub, sig64);
}

/**
 * The close for `cumulative`, signed by both. The signatures are not checked here: the
 * payee verified the payer's on receipt (verifyState), and the node checks both.
 */
export function closeTx(t: ChannelTerms, funding: Outpoint, cumulative: bigint, payerSig64: Uint8Array, payeeSig64: Uint8Array): { hex: string; txid: string } {
  const witnessScript = witnessScriptOf(t);
  const tx = singleSpend(funding, CLOSE_SEQUENCE, 0, stateOutputs(t, cumulative));
  // 0x01 takes the OP_IF branch (MINIMALIF wants exactly that); the payee's signature is
  // checked first, so it sits above the payer's on the stack.
  tx.setWitness(0, [witnessSig(payerSig64), witnessSig(payeeSig64), Uint8Array.of(1), witnessScript]);
  return { hex: tx.toHex(), txid: tx.getId() };
}

/**
 * Which branch a spend of the channel output took, from its witness's shape: the close
 * carries two signatures, the selector and the script; the refund one signature, the
 * empty selector and the script. (Only these two spends exist: the script allows no other.)
 */
export function spendKind(witness: Uint8Array[]): 'close' | 'refund' | null {
  if (witness.length === 4) return 'close';
  if (witness.length === 3) return 'refund';
  return null;
}

/** The fee a spend of the channel output pays: the capacity less what its outputs hold. */
export function spendFee(t: Pick<ChannelTerms, 'capacity'>, outputs: { value: bigint }[]): bigint {
  return t.capacity - outputs.reduce((a, o) => a + o.value, 0n);
}

/** The payer's refund of the whole output once the chain reaches the expiry. */
export function refundTx(t: ChannelTerms, funding: Outpoint, toScript: Uint8Array, feeRate: FeeRate, payerPriv: Uint8Array): { hex: string; txid: string; fee: bigint } {
  const witnessScript = witnessScriptOf(t);
  // The empty item takes the OP_ELSE branch, where CLTV holds nLockTime to the expiry.
  const { hex, txid, fee } = sweep({
    funding, value: t.capacity, witnessScript, sequence: LOCKTIME_SEQUENCE, locktime: t.expiry, toScript, feeRate,
    priv: payerPriv, pubkey: t.payerPubkey, branch: [new Uint8Array(0)], wrongKey: 'the refund key is not the payer key of this channel',
  });
  return { hex, txid, fee };
}

/** vbytes of the close with both outputs, at its largest signatures and expiry push. */
export function closeVbytes(t: Pick<ChannelTerms, 'payeeScript' | 'payerScript'>): bigint {
  return spendVbytes([MAX_SIG_BYTES, MAX_SIG_BYTES, 1, MAX_WITNESS_SCRIPT_BYTES], [t.payeeScript, t.payerScript]);
}
