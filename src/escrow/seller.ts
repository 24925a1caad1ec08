/**
 * The seller: makes a signed (optionally attested) offer and keeps K sealed; takes a
 * buyer's acceptance after checking its funding output against the offer; claims the
 * coins by revealing K once the funding has its confirmations, and never so near the
 * timeout that the claim would race the buyer's refund.
 */
import { randomBytes } from 'node:crypto';
import { Transaction } from 'bitcoinjs-lib';
import * as ecc from 'tiny-secp256k1';
import { SwarmpayError } from '../errors.js';
import { addressToScript } from '../bitcoin/address.js';
import { checkHtlcFunding, claimTx } from '../bitcoin/htlc.js';
import { broadcastOnce } from '../chain/broadcast.js';
import type { WaitOptions } from '../chain/backend.js';
import type { AttestationDoc } from '../tpm/attestation.js';
import { ShapeError, asObj, hex, int, obj } from '../util/shape.js';
import { ESCROW_CHAIN, contractKey } from '../wallet/hd.js';
import { receiveAddressOf, sessionAccount, type WalletContext } from '../wallet/wallet.js';
import { htlcOf, htlcSpend } from './contract.js';
import { draftOffer, offerDigest, signOffer, type Offer } from './offer.js';
import { getEscrow, htlcTerms, listEscrows, nextEscrowKey, saveEscrow, writeEscrowFile, type Acceptance, type EscrowRecord } from './store.js';

/** Below this a claim could hardly pay its own fee. */
export const MIN_PRICE = 1000n;
/**
 * The funding signals RBF: until it confirms, the buyer can replace it, so a claim on it
 * would reveal K while the coins can still go back to the buyer.
 */
export const MIN_CONFIRMATIONS = 1;
/** Blocks before the timeout from which the seller no longer claims without --force. */
export const DEFAULT_CLAIM_MARGIN = 6;

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

export async function createOffer(ctx: WalletContext, o: OfferOptions): Promise<{ offer: Offer; ciphertext: Buffer; ciphertextFile: string }> {
  if (o.price < MIN_PRICE) throw new SwarmpayError('DUST_OUTPUT', `a price of ${o.price} sats could not pay the claim's fee`, { hint: `ask at least ${MIN_PRICE} sats` });
  if (o.confirmations < MIN_CONFIRMATIONS) {
    throw new SwarmpayError('USAGE', `an offer needs at least ${MIN_CONFIRMATIONS} confirmation of the funding before the claim`, { hint: 'a claim on an unconfirmed funding reveals K while the buyer can still replace the funding' });
  }
  if (o.timeout.min <= DEFAULT_CLAIM_MARGIN + o.confirmations) {
    // takeAcceptance would refuse every acceptance: the seller could never claim in time.
    throw new SwarmpayError('USAGE', `a timeout of ${o.timeout.min} blocks leaves no time to wait for ${o.confirmations} confirmations and claim ${DEFAULT_CLAIM_MARGIN} blocks before it`, { hint: `offer at least ${DEFAULT_CLAIM_MARGIN + o.confirmations + 1} blocks` });
  }
  const keyIndex = nextEscrowKey(ctx.session);
  const key = contractKey(ctx.seed, ctx.network, ESCROW_CHAIN, keyIndex);
  const id = randomBytes(8).toString('hex');
  const draft = draftOffer({ id, network: ctx.network, name: o.name, item: o.item, price: o.price, timeout: o.timeout, confirmations: o.confirmations, seller: key.pub, expires: new Date(Date.now() + o.expiresIn * 1000) });
  const offer = signOffer(draft.body, key.priv);
  if (o.attest) offer.attestation = await o.attest(offerDigest(offer));
  // The ciphertext first: a record without its ciphertext could not be served.
  const ciphertextFile = writeEscrowFile(ctx.networkDir, `${id}.enc`, draft.ciphertext);
  await saveEscrow(ctx.session, { id, role: 'seller', offer, keyIndex, key: draft.key.toString('hex'), acceptance: null, status: 'offered', claimTxid: null, refundTxid: null, created: new Date().toISOString() });
  return { offer, ciphertext: draft.ciphertext, ciphertextFile };
}

/** Reads an acceptance field by field; anything out of shape is INVALID_FILE. */
export function parseAcceptance(v: unknown): Acceptance {
  try {
    const o = asObj(v, 'acceptance');
    if (o.format !== 'swarmpay-acceptance' || o.version !== 1) throw new ShapeError('it is not a version 1 swarmpay-acceptance');
    const funding = obj(o, 'funding', 'acceptance');
    return {
      format: 'swarmpay-acceptance',
      version: 1,
      offer: hex(o, 'offer', 'acceptance', 8),
      buyer: hex(o, 'buyer', 'acceptance', 33),
      timeout: int(o, 'timeout', 'acceptance', 1, 499_999_999),
      funding: { txid: hex(funding, 'txid', 'acceptance.funding', 32), vout: int(funding, 'vout', 'acceptance.funding', 0, 10_000) },
      tx: hex(o, 'tx', 'acceptance'),
    };
  } catch (e) {
    if (e instanceof ShapeError) throw new SwarmpayError('INVALID_FILE', `not a valid acceptance: ${e.message}`, { hint: 'use the file `escrow accept` wrote; nothing was changed' });
    throw e;
  }
}

function sellerRecord(ctx: WalletContext, id: string): EscrowRecord {
  const rec = getEscrow(ctx.session, id);
  if (rec.role !== 'seller') throw new SwarmpayError('ESCROW_STATE', `escrow ${id} is one this wallet buys in, not one it sells in`, { hint: 'as the buyer, `escrow claim --out FILE` gets the item' });
  return rec;
}

/**
 * Takes a buyer's acceptance: the funding must pay exactly the offer's HTLC (rebuilt here
 * from the offer and the buyer's key and timeout, never taken from the buyer's bytes) and
 * leave time to claim. The node gets the funding transaction too, in case it has not seen it.
 */
export async function takeAcceptance(ctx: WalletContext, a: Acceptance, margin = DEFAULT_CLAIM_MARGIN): Promise<EscrowRecord> {
  const rec = sellerRecord(ctx, a.offer);
  if (rec.acceptance !== null) {
    const same = rec.acceptance.funding.txid === a.funding.txid && rec.acceptance.funding.vout === a.funding.vout && rec.acceptance.buyer === a.buyer && rec.acceptance.timeout === a.timeout;
    if (same) return rec;
    throw new SwarmpayError('ESCROW_STATE', `escrow ${rec.id} was already accepted (funding ${rec.acceptance.funding.txid})`, { hint: 'an offer sells once; the buyer can refund after its timeout' });
  }
  if (rec.status !== 'offered') throw new SwarmpayError('ESCROW_STATE', `escrow ${rec.id} is ${rec.status}`);
  if (!ecc.isPointCompressed(Buffer.from(a.buyer, 'hex'))) throw new SwarmpayError('INVALID_FILE', 'the acceptance names a buyer key that is not a compressed public key', { hint: 'nothing was changed' });
  let txid: string;
  try {
    txid = Transaction.fromHex(a.tx).getId();
  } catch (e) {
    throw new SwarmpayError('FUNDING_MISMATCH', 'the funding transaction in the acceptance does not parse', { hint: 'nothing was changed', cause: e });
  }
  if (txid !== a.funding.txid) throw new SwarmpayError('FUNDING_MISMATCH', `the acceptance names funding ${a.funding.txid} but carries transaction ${txid}`, { hint: 'nothing was changed' });
  // The HTLC is fixed from here on, and every escrow accepted now is size-checked (a record
  // with an acceptance and no `htlc` was written before the check: legacy).
  const candidate: EscrowRecord = { ...rec, acceptance: a, status: 'funded', htlc: 'size-checked' };
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
export function claimConfirmations(rec: EscrowRecord): number {
  return Math.max(MIN_CONFIRMATIONS, rec.offer.confirmations);
}

export interface ClaimOptions {
  feeRate: bigint;
  margin: number;
  force: boolean;
  /** Wait for the funding's confirmations instead of refusing. */
  wait?: WaitOptions;
}

/** The seller's claim: idempotent, as the chain (mempool included) is checked for an earlier one first. */
export async function claimEscrow(ctx: WalletContext, id: string, o: ClaimOptions): Promise<{ txid: string; fee: bigint | null; rec: EscrowRecord }> {
  const rec = sellerRecord(ctx, id);
  if (rec.status === 'offered') throw new SwarmpayError('ESCROW_STATE', `no buyer has accepted escrow ${id} yet`, { hint: 'pass the buyer\'s acceptance with --acceptance FILE, or let `escrow serve` take it' });
  if (rec.status !== 'funded' && rec.status !== 'claimed') throw new SwarmpayError('ESCROW_STATE', `escrow ${id} is ${rec.status}`);
  // The chain, not the record, says whether a claim stands: a claim made before (and
  // perhaps not recorded, after a crash) is taken as it is; one that left the mempool
  // is made again.
  const h = htlcOf(rec, ctx.network);
  const done = await htlcSpend(ctx.chain, h);
  if (done?.kind === 'claim') {
    const claimed = { ...rec, status: 'claimed' as const, claimTxid: done.txid };
    if (rec.status !== 'claimed' || rec.claimTxid !== done.txid) await saveEscrow(ctx.session, claimed);
    return { txid: done.txid, fee: null, rec: claimed };
  }
  if (done?.kind === 'refund') {
    await saveEscrow(ctx.session, { ...rec, status: 'refunded', refundTxid: done.txid });
    throw new SwarmpayError('ESCROW_STATE', `the buyer refunded escrow ${id} in ${done.txid}`, { hint: 'the key was never revealed: the item stays yours' });
  }
  const funding = await ctx.chain.getTransaction(h.funding.txid);
  if (funding === null) throw new SwarmpayError('ESCROW_STATE', `the node does not know the funding ${h.funding.txid}`, { hint: 'the buyer must broadcast it; nothing was claimed' });
  const wanted = claimConfirmations(rec);
  if (funding.confirmations < wanted) {
    if (o.wait === undefined) {
      throw new SwarmpayError('ESCROW_STATE', `the funding has ${funding.confirmations} of ${wanted} confirmations`, { hint: 'run again once it confirms, or add --wait' });
    }
    await ctx.chain.waitForConfirmations(h.funding.txid, wanted, o.wait);
  }
  const tip = await ctx.chain.tipHeight();
  if (tip + o.margin >= h.terms.timeout && !o.force) {
    throw new SwarmpayError('ESCROW_TOO_LATE', `the tip (${tip}) is within ${o.margin} blocks of the timeout (${h.terms.timeout}): a claim now races the buyer's refund, and a claim that loses it gives the key away for nothing`, {
      hint: 'add --force to claim anyway; nothing was revealed',
      details: { tip, timeout: h.terms.timeout },
    });
  }
  const to = addressToScript((await receiveAddressOf(ctx.chain, sessionAccount(ctx.session, ctx.network), ctx.network)).address, ctx.network);
  const tx = claimTx(h.terms, h.funding, Buffer.from(rec.key!, 'hex'), to, o.feeRate, contractKey(ctx.seed, ctx.network, ESCROW_CHAIN, rec.keyIndex).priv);
  await broadcastOnce(ctx.chain, tx.hex, tx.txid);
  const claimed = { ...rec, status: 'claimed' as const, claimTxid: tx.txid };
  await saveEscrow(ctx.session, claimed);
  return { txid: tx.txid, fee: tx.fee, rec: claimed };
}

/** The offers this seller still sells: not accepted and not expired. */
export function openOffers(ctx: WalletContext, now = new Date()): EscrowRecord[] {
  return listEscrows(ctx.session).filter((r) => r.role === 'seller' && r.status === 'offered' && Date.parse(r.offer.expires) > now.getTime());
}
