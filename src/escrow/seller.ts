/**
 * The seller: makes a signed (optionally attested) offer and keeps K sealed; takes a
 * buyer's acceptance after checking its funding output against the offer; claims the
 * coins by revealing K once the funding has its confirmations, and never so near the
 * timeout that the claim would race the buyer's refund. Sold means confirmed: an escrow
 * whose funding is replaced or double-spent before it confirms is offered again. The claim
 * pays the node's fee estimate unless told otherwise, and a claim that waits is bumped by
 * CPFP from its own output (`escrow serve` does both).
 */
import { randomBytes } from 'node:crypto';
import { Transaction } from 'bitcoinjs-lib';
import { isCompressedPoint } from '../bitcoin/ecc.js';
import { SwarmpayError } from '../errors.js';
import { scriptToAddress } from '../bitcoin/address.js';
import { checkHtlcFunding, claimTx } from '../bitcoin/htlc.js';
import type { NetworkName } from '../bitcoin/network.js';
import { checkFeeRate } from '../bitcoin/policy.js';
import { broadcastOnce } from '../chain/broadcast.js';
import type { ChainBackend, TxInfo, WaitOptions } from '../chain/backend.js';
import { SETTLE_TARGET_BLOCKS, MIN_SETTLE_FEE_RATE } from '../chain/fees.js';
import type { AttestationDoc } from '../tpm/attestation.js';
import { ShapeError } from '../util/shape.js';
import type { ContractContext } from '../wallet/contract-wallet.js';
import { htlcOf, htlcSpend } from './contract.js';
import { draftOffer, offerDigest, signOffer, type Offer } from './offer.js';
import { getEscrow, htlcTerms, listEscrows, nextEscrowKey, saveEscrow, writeEscrowFile } from './store.js';
import { readAcceptance, type Acceptance, type EscrowRecord, type SellerClaimed, type SellerFunded, type SellerOffered, type SellerRecord, type SellerRefunded } from './record.js';
import { FeeRate } from '../bitcoin/fee-rate.js';
import { DEFAULT_CLAIM_MARGIN } from './defaults.js';

export { DEFAULT_CLAIM_MARGIN };

/** Below this a claim could hardly pay its own fee. */
export const MIN_PRICE = 1000n;
/**
 * The funding signals RBF: until it confirms, the buyer can replace it, so a claim on it
 * would reveal K while the coins can still go back to the buyer.
 */
export const MIN_CONFIRMATIONS = 1;

export interface OfferOptions {
  name: string;
  item: Uint8Array;
  price: bigint;
  timeout: { min: number; max: number };
  confirmations: number;
  /** Seconds until the offer expires. */
  expiresIn: number;
  /** Quotes the TPM with the offer's digest as the nonce. */
  attest?: (nonce: Buffer) => Promise<AttestationDoc>;
}

export async function createOffer(ctx: ContractContext, o: OfferOptions): Promise<{ offer: Offer; ciphertext: Buffer; ciphertextFile: string }> {
  if (o.price < MIN_PRICE) throw new SwarmpayError('DUST_OUTPUT', `a price of ${o.price} sats could not pay the claim's fee`, { hint: `ask at least ${MIN_PRICE} sats` });
  if (o.confirmations < MIN_CONFIRMATIONS) {
    throw new SwarmpayError('USAGE', `an offer needs at least ${MIN_CONFIRMATIONS} confirmation of the funding before the claim`, { hint: 'a claim on an unconfirmed funding reveals K while the buyer can still replace the funding' });
  }
  if (o.timeout.min <= DEFAULT_CLAIM_MARGIN + o.confirmations) {
    // takeAcceptance would refuse every acceptance: the seller could never claim in time.
    throw new SwarmpayError('USAGE', `a timeout of ${o.timeout.min} blocks leaves no time to wait for ${o.confirmations} confirmations and claim ${DEFAULT_CLAIM_MARGIN} blocks before it`, { hint: `offer at least ${DEFAULT_CLAIM_MARGIN + o.confirmations + 1} blocks` });
  }
  const keyIndex = nextEscrowKey(ctx.session);
  const key = ctx.wallet.key('escrow', keyIndex);
  const id = randomBytes(8).toString('hex');
  const draft = draftOffer({ id, network: ctx.network, name: o.name, item: o.item, price: o.price, timeout: o.timeout, confirmations: o.confirmations, seller: key.pub, expires: new Date(Date.now() + o.expiresIn * 1000) });
  const offer = signOffer(draft.body, key.priv);
  if (o.attest) offer.attestation = await o.attest(offerDigest(offer));
  // The ciphertext first: a record without its ciphertext could not be served.
  const ciphertextFile = writeEscrowFile(ctx.networkDir, `${id}.enc`, draft.ciphertext);
  await saveEscrow(ctx.session, { id, role: 'seller', offer, keyIndex, key: draft.key.toString('hex'), status: 'offered', created: new Date().toISOString() });
  return { offer, ciphertext: draft.ciphertext, ciphertextFile };
}

/** Reads an acceptance field by field; anything out of shape is INVALID_FILE. */
export function parseAcceptance(v: unknown): Acceptance {
  try {
    return readAcceptance(v, 'acceptance');
  } catch (e) {
    if (e instanceof ShapeError) throw new SwarmpayError('INVALID_FILE', `not a valid acceptance: ${e.message}`, { hint: 'use the file `escrow accept` wrote; nothing was changed' });
    throw e;
  }
}

function sellerRecord(ctx: ContractContext, id: string): SellerRecord {
  const rec = getEscrow(ctx.session, id);
  if (rec.role !== 'seller') throw new SwarmpayError('ESCROW_STATE', `escrow ${id} is one this wallet buys in, not one it sells in`, { hint: 'as the buyer, `escrow claim --out FILE` gets the item' });
  return rec;
}

/**
 * Takes a buyer's acceptance: the funding must pay exactly the offer's HTLC (rebuilt here
 * from the offer and the buyer's key and timeout, never taken from the buyer's bytes) and
 * leave time to claim. The node gets the funding transaction too, in case it has not seen it.
 */
export async function takeAcceptance(ctx: ContractContext, a: Acceptance, margin = DEFAULT_CLAIM_MARGIN): Promise<Exclude<SellerRecord, SellerOffered>> {
  const rec = sellerRecord(ctx, a.offer);
  if (rec.status !== 'offered') {
    const same = rec.acceptance.funding.txid === a.funding.txid && rec.acceptance.funding.vout === a.funding.vout && rec.acceptance.buyer === a.buyer && rec.acceptance.timeout === a.timeout;
    if (same) return rec;
    throw new SwarmpayError('ESCROW_STATE', `escrow ${rec.id} was already accepted (funding ${rec.acceptance.funding.txid})`, { hint: 'an offer sells once; the buyer can refund after its timeout' });
  }
  if (!isCompressedPoint(Buffer.from(a.buyer, 'hex'))) throw new SwarmpayError('INVALID_FILE', 'the acceptance names a buyer key that is not a compressed public key', { hint: 'nothing was changed' });
  let txid: string;
  try {
    txid = Transaction.fromHex(a.tx).getId();
  } catch (e) {
    throw new SwarmpayError('FUNDING_MISMATCH', 'the funding transaction in the acceptance does not parse', { hint: 'nothing was changed', cause: e });
  }
  if (txid !== a.funding.txid) throw new SwarmpayError('FUNDING_MISMATCH', `the acceptance names funding ${a.funding.txid} but carries transaction ${txid}`, { hint: 'nothing was changed' });
  // The HTLC is fixed from here on, and every escrow accepted now is size-checked (a record
  // with an acceptance and no `htlc` was written before the check: legacy).
  const candidate: SellerFunded = { ...rec, acceptance: a, status: 'funded', htlc: 'size-checked' };
  checkHtlcFunding(htlcTerms(candidate), ctx.network, a.tx, a.funding.vout);
  const tip = await ctx.chain.tipHeight();
  const left = a.timeout - tip;
  if (left > rec.offer.timeout.max) {
    throw new SwarmpayError('FUNDING_MISMATCH', `the escrow times out at height ${a.timeout}, ${left} blocks from the tip; the offer allows at most ${rec.offer.timeout.max}`, { hint: 'nothing was changed' });
  }
  if (left <= margin + rec.offer.confirmations) {
    throw new SwarmpayError('ESCROW_TOO_LATE', `the escrow times out at height ${a.timeout}, only ${left} blocks from the tip: too near to wait for ${rec.offer.confirmations} confirmations and claim ${margin} blocks before it`, {
      hint: 'the buyer can refund after the timeout; nothing was changed',
    });
  }
  await broadcastOnce(ctx.chain, a.tx, txid);
  await saveEscrow(ctx.session, candidate);
  return candidate;
}

/** Confirmations the funding needs before the seller claims; never fewer than MIN_CONFIRMATIONS. */
export function claimConfirmations(rec: Pick<EscrowRecord, 'offer'>): number {
  return Math.max(MIN_CONFIRMATIONS, rec.offer.confirmations);
}

/** A claim is made to confirm within about an hour, as a channel's close is: `escrow serve` bumps one that waits longer. */
export const CLAIM_TARGET_BLOCKS = SETTLE_TARGET_BLOCKS;
/** The least claim fee rate (sat/vB), whatever the node estimates: a close's floor, twice the relay minimum. */
export const MIN_CLAIM_FEE_RATE = MIN_SETTLE_FEE_RATE;

/**
 * The claim's fee rate when none is given: the node's estimate for CLAIM_TARGET_BLOCKS,
 * never below MIN_CLAIM_FEE_RATE. A node without an estimate yet gives the floor on regtest;
 * elsewhere the fee is not guessed, as a claim that does not confirm before the timeout
 * gives K away for nothing.
 */
export async function claimFeeRate(chain: ChainBackend, network: NetworkName): Promise<FeeRate> {
  const estimate = await chain.estimateFeeRate(CLAIM_TARGET_BLOCKS);
  if (estimate === null && network !== 'regtest') {
    throw new SwarmpayError('FEE_RATE_REQUIRED', `the node has no fee estimate yet, and on ${network} the claim's fee is not guessed`, { hint: 'pass --fee-rate <sat/vB>; nothing was revealed' });
  }
  return checkFeeRate(estimate === null ? MIN_CLAIM_FEE_RATE : FeeRate.max(estimate, MIN_CLAIM_FEE_RATE));
}

/**
 * The funding of an accepted escrow as the node has it; or, when the node no longer knows
 * it and refuses it broadcast again (the buyer replaced or double-spent it before it
 * confirmed), gone. Sold means confirmed: an escrow whose funding is gone was never sold,
 * so its record goes back to `offered`, without the acceptance, and the offer can be sold
 * again. K was not revealed: a claim waits for the funding's confirmations.
 */
export type FundingView = { kind: 'standing'; tx: TxInfo } | { kind: 'gone'; reason: string; rec: SellerRecord };

/** A sold escrow: funded, or claimed (whose claim needs the funding to stand). */
type Sold = SellerFunded | SellerClaimed;

export async function lookAtFunding(ctx: ContractContext, rec: Sold): Promise<FundingView> {
  const a = rec.acceptance;
  const known = await ctx.chain.getTransaction(a.funding.txid);
  if (known !== null) return { kind: 'standing', tx: known };
  // Not known: a node that lost it (a restart empties btcd's mempool) takes it again.
  try {
    await broadcastOnce(ctx.chain, a.tx, a.funding.txid);
  } catch (e) {
    if (!(e instanceof SwarmpayError) || e.code !== 'TX_REJECTED') throw e;
    const reason = typeof e.details?.reason === 'string' ? e.details.reason : e.message;
    return { kind: 'gone', reason, rec: rec.status === 'funded' ? await releaseOffer(ctx, rec) : rec };
  }
  const again = await ctx.chain.getTransaction(a.funding.txid);
  if (again === null) throw new SwarmpayError('ESCROW_STATE', `the node does not know the funding ${a.funding.txid}`, { hint: 'the buyer must broadcast it; nothing was claimed' });
  return { kind: 'standing', tx: again };
}

/** The acceptance whose funding is gone is dropped; a record that moved on meanwhile is left as it is. */
async function releaseOffer(ctx: ContractContext, rec: SellerFunded): Promise<SellerRecord> {
  const cur = sellerRecord(ctx, rec.id);
  if (cur.status !== 'funded' || cur.acceptance.funding.txid !== rec.acceptance.funding.txid) return cur;
  // The acceptance goes, and the HTLC's template it fixed: the next acceptance fixes it again.
  const back: SellerOffered = { id: cur.id, role: 'seller', offer: cur.offer, keyIndex: cur.keyIndex, key: cur.key, created: cur.created, status: 'offered' };
  await saveEscrow(ctx.session, back);
  return back;
}

function fundingGone(rec: Sold, view: Extract<FundingView, { kind: 'gone' }>): SwarmpayError {
  const txid = rec.acceptance.funding.txid;
  if (rec.status !== 'funded') {
    return new SwarmpayError('ESCROW_STATE', `the funding ${txid} of escrow ${rec.id} is gone from the chain after the claim: the node refuses it (${view.reason})`, { details: { fundingTxid: txid, reason: view.reason } });
  }
  const open = view.rec.status === 'offered' && Date.parse(view.rec.offer.expires) > Date.now();
  return new SwarmpayError('ESCROW_STATE', `the funding ${txid} of escrow ${rec.id} is gone before it confirmed (replaced or double-spent; the node refuses it: ${view.reason}): the offer was not sold`, {
    hint: `the key was never revealed; ${open ? 'the offer is open again: `escrow serve` serves it, or take another buyer\'s acceptance' : 'the offer has expired, so nobody can accept it again'}`,
    details: { fundingTxid: txid, reason: view.reason, released: view.rec.status === 'offered' },
  });
}

/** Waits for the funding's confirmations; a funding that leaves the mempool meanwhile is broadcast again, or found gone. */
async function waitForFunding(ctx: ContractContext, rec: Sold, wanted: number, wait: WaitOptions): Promise<void> {
  for (;;) {
    try {
      await ctx.chain.waitForConfirmations(rec.acceptance.funding.txid, wanted, wait);
      return;
    } catch (e) {
      if (!(e instanceof SwarmpayError) || e.code !== 'TX_NOT_FOUND') throw e;
      const view = await lookAtFunding(ctx, rec);
      if (view.kind === 'gone') throw fundingGone(rec, view);
    }
  }
}

export interface ClaimOptions {
  /** The claim's fee rate; null for the node's estimate (claimFeeRate). */
  feeRate: FeeRate | null;
  margin: number;
  force: boolean;
  /** Wait for the funding's confirmations instead of refusing. */
  wait?: WaitOptions;
}

/**
 * The seller's claim: idempotent, as the chain (mempool included) is checked for an earlier
 * one first. An escrow whose funding is gone before it confirmed is offered again (and
 * ESCROW_STATE says so).
 */
export async function claimEscrow(ctx: ContractContext, id: string, o: ClaimOptions): Promise<{ txid: string; fee: bigint | null; feeRate: FeeRate | null; rec: SellerClaimed }> {
  const rec = sellerRecord(ctx, id);
  if (rec.status === 'offered') throw new SwarmpayError('ESCROW_STATE', `no buyer has accepted escrow ${id} yet`, { hint: 'pass the buyer\'s acceptance with --acceptance FILE, or let `escrow serve` take it' });
  if (rec.status === 'refunded') throw new SwarmpayError('ESCROW_STATE', `escrow ${id} is ${rec.status}`);
  // The chain, not the record, says whether a claim stands: a claim made before (and
  // perhaps not recorded, after a crash) is taken as it is; one that left the mempool
  // is made again.
  const h = htlcOf(rec, ctx.network);
  const done = await htlcSpend(ctx.chain, h);
  if (done?.kind === 'claim') {
    const claimed: SellerClaimed = { ...rec, status: 'claimed', claimTxid: done.txid };
    if (rec.status !== 'claimed' || rec.claimTxid !== done.txid) await saveEscrow(ctx.session, claimed);
    return { txid: done.txid, fee: null, feeRate: null, rec: claimed };
  }
  if (done?.kind === 'refund') {
    const refunded: SellerRefunded = { ...rec, status: 'refunded', claimTxid: rec.status === 'claimed' ? rec.claimTxid : null, refundTxid: done.txid };
    await saveEscrow(ctx.session, refunded);
    throw new SwarmpayError('ESCROW_STATE', `the buyer refunded escrow ${id} in ${done.txid}`, {
      hint: rec.status === 'claimed' ? `the claim ${rec.claimTxid} did not confirm before the refund: the key is out, and the coins went back to the buyer` : 'the key was never revealed: the item stays yours',
    });
  }
  const view = await lookAtFunding(ctx, rec);
  if (view.kind === 'gone') throw fundingGone(rec, view);
  const wanted = claimConfirmations(rec);
  if (view.tx.confirmations < wanted) {
    if (o.wait === undefined) {
      throw new SwarmpayError('ESCROW_STATE', `the funding has ${view.tx.confirmations} of ${wanted} confirmations`, { hint: 'run again once it confirms, or add --wait' });
    }
    await waitForFunding(ctx, rec, wanted, o.wait);
  }
  const tip = await ctx.chain.tipHeight();
  // A claim made before revealed K already: making it again is never held back, as that
  // would only leave the coins to the buyer's refund.
  if (rec.status === 'funded' && tip + o.margin >= h.terms.timeout && !o.force) {
    throw new SwarmpayError('ESCROW_TOO_LATE', `the tip (${tip}) is within ${o.margin} blocks of the timeout (${h.terms.timeout}): a claim now races the buyer's refund, and a claim that loses it gives the key away for nothing`, {
      hint: 'add --force to claim anyway; nothing was revealed',
      details: { tip, timeout: h.terms.timeout },
    });
  }
  const feeRate = o.feeRate ?? (await claimFeeRate(ctx.chain, ctx.network));
  const to = await ctx.wallet.payoutScript();
  const tx = claimTx(h.terms, h.funding, Buffer.from(rec.key, 'hex'), to, feeRate, ctx.wallet.key('escrow', rec.keyIndex).priv);
  await broadcastOnce(ctx.chain, tx.hex, tx.txid);
  const claimed: SellerClaimed = { ...rec, status: 'claimed', claimTxid: tx.txid };
  await saveEscrow(ctx.session, claimed);
  return { txid: tx.txid, fee: tx.fee, feeRate, rec: claimed };
}

/** A claim out but not confirmed, with the wallet's child that bumps it if one is in the mempool. */
export interface PendingClaim {
  claim: TxInfo;
  /** What the claim pays itself: the price less its one output. */
  fee: bigint;
  child: TxInfo | null;
  /** What the claim and its child pay together, rounded down to whole sat/kvB. */
  feeRate: FeeRate;
}

/** The unconfirmed claim `txid` of a claimed escrow, as the node has it. */
export async function pendingClaim(ctx: ContractContext, rec: Pick<EscrowRecord, 'id' | 'offer'>, txid: string): Promise<PendingClaim> {
  const claim = await ctx.chain.getTransaction(txid);
  if (claim === null) throw new SwarmpayError('ESCROW_STATE', `the claim ${txid} of escrow ${rec.id} is not in the node's mempool`, { hint: 'claim again (`escrow claim` or `escrow serve` makes it again); then bump' });
  if (claim.confirmations > 0) throw new SwarmpayError('ESCROW_STATE', `the claim ${txid} of escrow ${rec.id} is already confirmed`, { hint: 'nothing to bump' });
  const vsize = (t: TxInfo) => BigInt(Transaction.fromHex(t.hex).virtualSize());
  const fee = BigInt(rec.offer.price) - sumOutputs(claim);
  // The claim pays the wallet all it takes: only a wallet's child (a bump) spends that unconfirmed.
  const out = claim.outputs[0]!;
  const spend = await ctx.chain.findSpend({ txid, vout: 0 }, scriptToAddress(out.script, ctx.network));
  const child = spend === null || spend.confirmations > 0 ? null : await ctx.chain.getTransaction(spend.txid);
  if (child === null) return { claim, fee, child: null, feeRate: FeeRate.paidBy(fee, vsize(claim)) };
  let inputs = 0n;
  for (const i of child.inputs) {
    const prev = i.txid === claim.txid ? claim : await ctx.chain.getTransaction(i.txid);
    const o = prev?.outputs[i.vout];
    if (o === undefined) throw new SwarmpayError('INTERNAL', `the bump ${child.txid} spends ${i.txid}:${i.vout}, which the node does not know`);
    inputs += o.value;
  }
  const childFee = inputs - sumOutputs(child);
  return { claim, fee, child, feeRate: FeeRate.paidBy(fee + childFee, vsize(claim) + vsize(child)) };
}

/**
 * Bumps a pending claim by CPFP: a child spends the claim's output (and nothing else of the
 * wallet: a rescue never costs more than the claim brings) back to the wallet, so the two
 * pay `feeRate` together; it replaces an earlier child still in the mempool.
 */
export async function bumpClaim(ctx: ContractContext, p: PendingClaim, feeRate: FeeRate): Promise<{ txid: string; fee: bigint; feeRate: FeeRate; replaced: string | null }> {
  const replacing = p.child === null ? undefined : { hex: p.child.hex };
  const child = await ctx.wallet.bump({ txid: p.claim.txid, hex: p.claim.hex, fee: p.fee }, feeRate, { replacing, parentOnly: true }, async (c) => {
    await broadcastOnce(ctx.chain, c.hex, c.txid);
    return c;
  });
  return { txid: child.txid, fee: child.fee, feeRate, replaced: child.replaces };
}

function sumOutputs(tx: TxInfo): bigint {
  return tx.outputs.reduce((a, o) => a + o.value, 0n);
}

/** The offers this seller still sells: not accepted and not expired. */
export function openOffers(ctx: ContractContext, now = new Date()): SellerOffered[] {
  return listEscrows(ctx.session).filter((r): r is SellerOffered => r.role === 'seller' && r.status === 'offered' && Date.parse(r.offer.expires) > now.getTime());
}
