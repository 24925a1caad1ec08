/**
 * The fair-exchange contract of DESIGN.md "Fair exchange": a P2WSH output the seller
 * spends by revealing a 32-byte K with SHA256(K) = H, or the buyer alone once the chain
 * reaches the timeout height. The template is built from named terms and recognised back;
 * the witness of each branch is built here, and the preimage read back from a claim's.
 * Escrows funded before the script checked the preimage's size keep their own template.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { opcodes, script as bscript } from 'bitcoinjs-lib';
import { isCompressedPoint } from './ecc.js';
import type { Outpoint } from './outpoint.js';
import { MAX_MONEY } from './amount.js';
import type { NetworkName } from './network.js';
import { LOCKTIME_SEQUENCE, checkFundingOutput, isHeight, p2wshOutput, refuse, scriptInt, sweep } from './p2wsh-spend.js';
import type { FeeRate } from './fee-rate.js';

/**
 * Which script the HTLC is. 'size-checked', DESIGN.md's and every new escrow's, takes only
 * a 32-byte preimage (OP_SIZE 32 OP_EQUALVERIFY before OP_SHA256). 'legacy', the script of
 * escrows funded before that check, takes any preimage of H: a seller who set H over
 * another length could claim with a preimage that cannot be the item's key. It is kept
 * only to claim, refund and read those escrows.
 */
export type HtlcTemplate = 'size-checked' | 'legacy';

export interface HtlcTerms {
  template: HtlcTemplate;
  /** SHA-256 of the seller's key K (32 bytes). */
  hash: Uint8Array;
  /** 33-byte compressed public keys. */
  sellerPubkey: Uint8Array;
  buyerPubkey: Uint8Array;
  /** Absolute block height from which the buyer alone can spend (CLTV). */
  timeout: number;
  /** Sats in the output: the price. */
  value: bigint;
}

export const PREIMAGE_BYTES = 32;
/** A claim's sequence: final, as the hash branch has no timelock, and not replaceable. */
const CLAIM_SEQUENCE = 0xffffffff;

export function sha256(b: Uint8Array): Buffer {
  return createHash('sha256').update(b).digest();
}

/** What the script is built from: the terms but the value. */
export type HtlcScriptTerms = Omit<HtlcTerms, 'value'>;

function templateProblem(t: HtlcScriptTerms): string | undefined {
  if (t.template !== 'size-checked' && t.template !== 'legacy') return `"${String(t.template)}" is not an HTLC template`;
  if (t.hash.length !== 32) return `a hash lock of ${t.hash.length} bytes is not a SHA-256`;
  if (!isCompressedPoint(t.sellerPubkey)) return 'the seller key is not a compressed public key';
  if (!isCompressedPoint(t.buyerPubkey)) return 'the buyer key is not a compressed public key';
  if (!isHeight(t.timeout)) return `the timeout ${t.timeout} is not a block height`;
  return undefined;
}

/** OP_SIZE 32 OP_EQUALVERIFY: the preimage is 32 bytes, as K is. */
const SIZE_CHECK = [opcodes.OP_SIZE, bscript.number.encode(PREIMAGE_BYTES), opcodes.OP_EQUALVERIFY];

/** The HTLC's witness script. */
export function htlcScript(t: HtlcScriptTerms): Buffer {
  const problem = templateProblem(t);
  if (problem !== undefined) throw refuse(problem);
  return Buffer.from(
    bscript.compile([
      opcodes.OP_IF, ...(t.template === 'legacy' ? [] : SIZE_CHECK), opcodes.OP_SHA256, t.hash, opcodes.OP_EQUALVERIFY, t.sellerPubkey, opcodes.OP_CHECKSIG,
      opcodes.OP_ELSE, bscript.number.encode(t.timeout), opcodes.OP_CHECKLOCKTIMEVERIFY, opcodes.OP_DROP, t.buyerPubkey, opcodes.OP_CHECKSIG,
      opcodes.OP_ENDIF,
    ]),
  );
}

/** The terms an HTLC script was built from (either template), or null if it is not exactly one we would build. */
export function parseHtlcScript(script: Uint8Array): { template: HtlcTemplate; hash: Buffer; sellerPubkey: Buffer; buyerPubkey: Buffer; timeout: number } | null {
  const chunks = bscript.decompile(script);
  if (chunks === null) return null;
  // The template by its length; the exact bytes are checked below.
  const template: HtlcTemplate | null = chunks.length === 13 + SIZE_CHECK.length ? 'size-checked' : chunks.length === 13 ? 'legacy' : null;
  if (template === null) return null;
  const [, , hash, , seller, , , timeoutChunk, , , buyer] = template === 'legacy' ? chunks : [chunks[0]!, ...chunks.slice(1 + SIZE_CHECK.length)];
  if (!(hash instanceof Uint8Array) || !(seller instanceof Uint8Array) || !(buyer instanceof Uint8Array) || timeoutChunk === undefined) return null;
  const timeout = scriptInt(timeoutChunk);
  if (timeout === null) return null;
  const parsed = { template, hash: Buffer.from(hash), sellerPubkey: Buffer.from(seller), buyerPubkey: Buffer.from(buyer), timeout };
  if (templateProblem(parsed) !== undefined) return null;
  // As for the channel: only the exact bytes we would build, opcodes and minimal pushes included.
  return htlcScript(parsed).equals(script) ? parsed : null;
}

function witnessScriptOf(t: HtlcTerms): Buffer {
  if (t.value <= 0n || t.value > MAX_MONEY) throw refuse(`an escrow of ${t.value} sats is impossible`);
  return htlcScript(t);
}

export function htlcOutput(t: HtlcTerms, network: NetworkName): { script: Buffer; address: string; witnessScript: Buffer } {
  return p2wshOutput(witnessScriptOf(t), network);
}

/** Checks that a funding transaction's output is this HTLC: right script, exactly the price. */
export function checkHtlcFunding(t: HtlcTerms, network: NetworkName, fundingTxHex: string, vout: number): Outpoint {
  const want = htlcOutput(t, network);
  return checkFundingOutput(fundingTxHex, vout, want.script, t.value, want.address, 'escrow');
}

/** Whether `k` opens the hash lock: compared in constant time, as K is a secret until claimed. */
export function opensLock(t: Pick<HtlcTerms, 'hash'>, k: Uint8Array): boolean {
  return k.length === PREIMAGE_BYTES && timingSafeEqual(sha256(k), t.hash);
}

/** The seller's claim: the whole output to `toScript`, revealing K. */
export function claimTx(t: HtlcTerms, funding: Outpoint, k: Uint8Array, toScript: Uint8Array, feeRate: FeeRate, sellerPriv: Uint8Array): { hex: string; txid: string; fee: bigint } {
  if (!opensLock(t, k)) throw refuse('the key does not open the hash lock: SHA-256 of it is not the offer\'s hash');
  // 0x01 takes the OP_IF branch (MINIMALIF wants exactly that).
  const { hex, txid, fee } = sweep({
    funding, value: t.value, witnessScript: witnessScriptOf(t), sequence: CLAIM_SEQUENCE, locktime: 0, toScript, feeRate,
    priv: sellerPriv, pubkey: t.sellerPubkey, branch: [k, Uint8Array.of(1)], wrongKey: 'the claim key is not the seller key of this escrow',
  });
  return { hex, txid, fee };
}

/** The buyer's refund once the chain reaches the timeout height. */
export function htlcRefundTx(t: HtlcTerms, funding: Outpoint, toScript: Uint8Array, feeRate: FeeRate, buyerPriv: Uint8Array): { hex: string; txid: string; fee: bigint } {
  // The empty item takes the OP_ELSE branch, where CLTV holds nLockTime to the timeout.
  const { hex, txid, fee } = sweep({
    funding, value: t.value, witnessScript: witnessScriptOf(t), sequence: LOCKTIME_SEQUENCE, locktime: t.timeout, toScript, feeRate,
    priv: buyerPriv, pubkey: t.buyerPubkey, branch: [new Uint8Array(0)], wrongKey: 'the refund key is not the buyer key of this escrow',
  });
  return { hex, txid, fee };
}

/**
 * How a spend of the HTLC went, from its witness: a claim reveals the preimage (checked
 * against the hash lock), a refund takes the timeout branch; anything else is not a spend
 * of this script. The branch is read from the witness's shape, not from the selector's
 * bytes: an exact 0x01 is only relay policy, and a miner may confirm a claim with any true
 * selector. A valid spend with four items took the hash branch (the clean-stack rule leaves
 * no other way).
 *
 * The key is the preimage as revealed. The size-checked script takes only K's 32 bytes; the
 * legacy one takes any preimage of H, so a claim of a legacy escrow may reveal one of
 * another length: a valid claim all the same (the coins are gone), which cannot be the
 * item's key. It is read as a claim, so that the buyer can show the seller cheated.
 */
export function readSpend(t: HtlcTerms, witness: Uint8Array[]): { kind: 'claim'; key: Buffer } | { kind: 'refund' } | null {
  const ws = witness[witness.length - 1];
  if (ws === undefined || !htlcScript(t).equals(ws)) return null;
  if (witness.length === 4) {
    const preimage = witness[1]!;
    const opens = t.template === 'legacy' ? sha256(preimage).equals(t.hash) : opensLock(t, preimage);
    return opens ? { kind: 'claim', key: Buffer.from(preimage) } : null;
  }
  if (witness.length === 3) return { kind: 'refund' };
  return null;
}
