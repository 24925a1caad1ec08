/**
 * The buyer: checks an offer and its ciphertext, funds the HTLC and hands the seller an
 * acceptance; once the seller claims, reads K from the claim's witness, decrypts and checks
 * the item (keeping the evidence if the seller cheated); or refunds after the timeout.
 */
import { SwarmpayError, isSwarmpayError } from '../errors.js';
import { PREIMAGE_BYTES, checkHtlcFunding, htlcOutput, htlcRefundTx, sha256, type HtlcTerms } from '../bitcoin/htlc.js';
import { broadcastOnce } from '../chain/broadcast.js';
import { writeFileAtomic } from '../util/atomic-file.js';
import type { ContractContext } from '../wallet/contract-wallet.js';
import { htlcOf, htlcSpend, type HtlcSpend } from './contract.js';
import { checkOffer, decryptItem, type Offer, type OfferAttestation, type OfferChecks } from './offer.js';
import { findEscrow, getEscrow, nextEscrowKey, readCiphertext, removeEscrow, saveEscrow, writeEscrowFile } from './store.js';
import type { Acceptance, BuyerCheated, BuyerCompleted, BuyerFunded, BuyerRecord, BuyerRefunded } from './record.js';
import type { FeeRate } from '../bitcoin/fee-rate.js';
import { DEFAULT_ACCEPT_TIMEOUT } from './defaults.js';

export { DEFAULT_ACCEPT_TIMEOUT };

/** What the buyer is about to agree to: shown before anything is paid. */
export interface AcceptSummary {
  id: string;
  item: { name: string; size: number };
  price: bigint;
  fee: bigint;
  feeRate: FeeRate;
  timeoutBlocks: number;
  timeoutHeight: number;
  seller: string;
  attestation: OfferAttestation | null;
}

export interface AcceptOptions {
  checks: Omit<OfferChecks, 'network' | 'ciphertext' | 'now'>;
  /** Blocks from now to the timeout height; DEFAULT_ACCEPT_TIMEOUT, within what the offer accepts, by default. */
  timeoutBlocks?: number;
  feeRate: FeeRate;
  /** Asked once the funding is built and before it is stored or sent; false cancels, nothing paid. */
  confirm?: (s: AcceptSummary) => Promise<boolean>;
}

/** The timeout a buyer gets without naming one; refused if the offer wants longer than the default. */
function defaultTimeout(offer: Offer): number {
  if (offer.timeout.min > DEFAULT_ACCEPT_TIMEOUT) {
    throw new SwarmpayError('USAGE', `the offer's refund timeout is at least ${offer.timeout.min} blocks (about ${Math.round(offer.timeout.min / 144)} days of coins locked if the seller never claims)`, {
      hint: `pass --timeout ${offer.timeout.min} (or more) to accept that; nothing was paid`,
    });
  }
  return Math.min(DEFAULT_ACCEPT_TIMEOUT, offer.timeout.max);
}

export interface AcceptResult {
  rec: BuyerRecord;
  acceptance: Acceptance;
  fee: bigint | null;
  attestation: OfferAttestation | null;
}

/**
 * Checks the offer, funds its HTLC and returns the acceptance for the seller. Accepting
 * the same offer again does not pay twice: it broadcasts the stored funding again.
 */
export async function acceptOffer(ctx: ContractContext, offer: Offer, ciphertext: Uint8Array, o: AcceptOptions): Promise<AcceptResult> {
  const { attestation } = checkOffer(offer, { ...o.checks, network: ctx.network, ciphertext, now: new Date() });
  const existing = findEscrow(ctx.session, offer.id);
  if (existing !== undefined) {
    if (existing.role !== 'buyer') throw new SwarmpayError('ESCROW_STATE', `escrow ${offer.id} is this wallet's own offer`, { hint: 'a buyer accepts it from another wallet' });
    await broadcastOnce(ctx.chain, existing.acceptance.tx, existing.acceptance.funding.txid);
    return { rec: existing, acceptance: existing.acceptance, fee: null, attestation };
  }
  const blocks = o.timeoutBlocks ?? defaultTimeout(offer);
  if (blocks < offer.timeout.min || blocks > offer.timeout.max) {
    throw new SwarmpayError('USAGE', `--timeout ${blocks} is outside the ${offer.timeout.min} to ${offer.timeout.max} blocks the offer accepts`, { hint: 'nothing was paid' });
  }
  const timeout = (await ctx.chain.tipHeight()) + blocks;
  const keyIndex = nextEscrowKey(ctx.session);
  const key = ctx.wallet.key('escrow', keyIndex);
  // Every new escrow is size-checked: its claim can reveal nothing but a 32-byte K.
  const terms: HtlcTerms = { template: 'size-checked', hash: Buffer.from(offer.hash, 'hex'), sellerPubkey: Buffer.from(offer.seller, 'hex'), buyerPubkey: key.pub, timeout, value: BigInt(offer.price) };
  // Its coins stay locked until the funding is broadcast (the confirmation may take a while).
  return ctx.wallet.fund([{ address: htlcOutput(terms, ctx.network).address, amount: terms.value }], o.feeRate, async (signed) => {
    const vout = 0; // the payment comes first
    checkHtlcFunding(terms, ctx.network, signed.hex, vout);
    const summary: AcceptSummary = { id: offer.id, item: { name: offer.item.name, size: offer.item.size }, price: terms.value, fee: signed.fee, feeRate: o.feeRate, timeoutBlocks: blocks, timeoutHeight: timeout, seller: offer.seller, attestation };
    if (o.confirm && !(await o.confirm(summary))) throw new SwarmpayError('USAGE', 'cancelled; nothing was paid');
    const acceptance: Acceptance = { format: 'swarmpay-acceptance', version: 1, offer: offer.id, buyer: key.pub.toString('hex'), timeout, funding: { txid: signed.txid, vout }, tx: signed.hex };
    const rec: BuyerFunded = { id: offer.id, role: 'buyer', offer, keyIndex, acceptance, status: 'funded', created: new Date().toISOString(), htlc: terms.template };
    writeEscrowFile(ctx.networkDir, `${offer.id}.enc`, ciphertext);
    // Stored (a checkpoint) before the coins move: whatever happens next, the refund path is known.
    await saveEscrow(ctx.session, rec);
    try {
      await broadcastOnce(ctx.chain, signed.hex, signed.txid);
    } catch (e) {
      // The node refused the funding: nothing is on chain, so nothing is remembered either.
      if (isSwarmpayError(e, 'TX_REJECTED')) await removeEscrow(ctx.session, offer.id);
      throw e;
    }
    return { rec, acceptance, fee: signed.fee, attestation };
  });
}

function buyerRecord(ctx: ContractContext, id: string): BuyerRecord {
  const rec = getEscrow(ctx.session, id);
  if (rec.role !== 'buyer') throw new SwarmpayError('ESCROW_STATE', `escrow ${id} is one this wallet sells in`, { hint: 'as the seller, `escrow claim` takes the coins' });
  return rec;
}

export interface RecoverOptions {
  /** Poll for the seller's claim until it appears or the timeout height passes. */
  wait?: { pollMs: number; timeoutMs: number; onWait?: (tip: number, timeout: number) => void };
}

export interface Recovered {
  file: string;
  claimTxid: string;
  sha256: string;
  size: number;
}

/** Polls the chain for the HTLC's spend; with `wait`, until there is one or the buyer may refund. */
async function awaitSpend(ctx: ContractContext, rec: BuyerFunded, wait: RecoverOptions['wait']): Promise<HtlcSpend | null> {
  const h = htlcOf(rec, ctx.network);
  const deadline = Date.now() + (wait?.timeoutMs ?? 0);
  const txid = rec.acceptance.funding.txid;
  for (;;) {
    const spend = await htlcSpend(ctx.chain, h);
    if (spend !== null || wait === undefined) return spend;
    const tip = await ctx.chain.tipHeight();
    if (tip >= h.terms.timeout) return null;
    if (Date.now() >= deadline) {
      // The txid in the details marks this wait's end (a node that stops answering is a TIMEOUT too).
      throw new SwarmpayError('TIMEOUT', `the seller has not claimed escrow ${rec.id} (funding ${txid}) after a wait of ${wait.timeoutMs / 1000} s`, { details: { txid, tip, timeout: h.terms.timeout } });
    }
    wait.onWait?.(tip, h.terms.timeout);
    await new Promise((r) => setTimeout(r, Math.min(wait.pollMs, deadline - Date.now())));
  }
}

/**
 * The buyer's side of the claim: K from the seller's spend, the item decrypted and checked
 * against the offer, written to `out`. If it does not match, the seller cheated: the
 * evidence (offer, acceptance, claim, K, what K decrypts to) is kept and SELLER_CHEATED thrown.
 */
export async function recoverItem(ctx: ContractContext, id: string, out: string, o: RecoverOptions = {}): Promise<Recovered> {
  const rec = buyerRecord(ctx, id);
  if (rec.status === 'refunded') throw new SwarmpayError('ESCROW_STATE', `escrow ${id} was refunded (${rec.refundTxid}): the seller never revealed the key`);
  let claimTxid: string;
  let key: Buffer;
  if (rec.status === 'funded') {
    const spend = await awaitSpend(ctx, rec, o.wait);
    const timeout = rec.acceptance.timeout;
    if (spend === null) {
      throw new SwarmpayError('ESCROW_STATE', `the seller has not claimed escrow ${id}`, { hint: `run again later (or with --wait); from height ${timeout} on, \`swarmpay escrow refund ${id}\` takes the coins back` });
    }
    if (spend.kind === 'refund') {
      const refunded: BuyerRefunded = { ...rec, status: 'refunded', refundTxid: spend.txid };
      await saveEscrow(ctx.session, refunded);
      throw new SwarmpayError('ESCROW_STATE', `escrow ${id} was refunded (${spend.txid}): the seller never revealed the key`);
    }
    key = spend.key;
    claimTxid = spend.txid;
  } else {
    key = Buffer.from(rec.key, 'hex');
    claimTxid = rec.claimTxid;
  }
  // A legacy HTLC (funded before the script checked the preimage's size) can be claimed with
  // a preimage of H of another length: no AES-256 key, so no item; the seller cheated.
  const notAKey = key.length !== PREIMAGE_BYTES;
  const item = notAKey ? null : decryptItem(readCiphertext(ctx.networkDir, id), key);
  const digest = item === null ? null : sha256(item).toString('hex');
  if (item === null || digest !== rec.offer.item.sha256) {
    const evidence = writeEscrowFile(ctx.networkDir, `${id}.evidence.json`, JSON.stringify({
      what: notAKey
        ? `the seller claimed with a ${key.length}-byte preimage of the offer's hash, not a 32-byte key: nothing it revealed can decrypt the ciphertext the seller signed for`
        : item === null ? 'the key the seller revealed does not decrypt the ciphertext the seller signed for' : 'the key the seller revealed decrypts the ciphertext to another item than the offer names',
      offer: rec.offer, acceptance: rec.acceptance, claimTxid, key: key.toString('hex'), decryptedSha256: digest, ciphertext: `${id}.enc`,
    }, null, 2) + '\n');
    if (item !== null) writeEscrowFile(ctx.networkDir, `${id}.evidence.bin`, item);
    const cheated: BuyerCheated = { ...rec, status: 'cheated', key: key.toString('hex'), claimTxid };
    await saveEscrow(ctx.session, cheated);
    throw new SwarmpayError('SELLER_CHEATED', `the seller took the coins (${claimTxid}) but ${notAKey ? `revealed a ${key.length}-byte preimage, not a 32-byte key` : item === null ? 'its key does not decrypt the ciphertext' : `the item it revealed has SHA-256 ${digest}, not the offer's ${rec.offer.item.sha256}`}`, {
      hint: `the evidence is kept in ${evidence}: the signed offer, the claim and the key prove it`,
      details: { evidence, claimTxid },
    });
  }
  writeFileAtomic(out, item, 0o644);
  if (rec.status !== 'completed') {
    const completed: BuyerCompleted = { ...rec, status: 'completed', key: key.toString('hex'), claimTxid };
    await saveEscrow(ctx.session, completed);
  }
  return { file: out, claimTxid, sha256: digest, size: item.length };
}

/**
 * The buyer's refund after the timeout. The node is the referee: before the timeout it
 * refuses the transaction, and the error says from which height it will take it.
 */
export async function refundEscrow(ctx: ContractContext, id: string, feeRate: FeeRate): Promise<{ txid: string; fee: bigint | null }> {
  const rec = buyerRecord(ctx, id);
  if (rec.status === 'refunded') return { txid: rec.refundTxid, fee: null };
  if (rec.status !== 'funded') throw new SwarmpayError('ESCROW_STATE', `escrow ${id} is ${rec.status}: the seller claimed it`, { hint: `\`swarmpay escrow claim ${id} --out FILE\` gets the item` });
  const h = htlcOf(rec, ctx.network);
  const spend = await htlcSpend(ctx.chain, h);
  if (spend?.kind === 'claim') {
    throw new SwarmpayError('ESCROW_STATE', `the seller claimed escrow ${id} in ${spend.txid}`, { hint: `\`swarmpay escrow claim ${id} --out FILE\` gets the item` });
  }
  if (spend?.kind === 'refund') {
    const refunded: BuyerRefunded = { ...rec, status: 'refunded', refundTxid: spend.txid };
    await saveEscrow(ctx.session, refunded);
    return { txid: spend.txid, fee: null };
  }
  const to = await ctx.wallet.payoutScript();
  const tx = htlcRefundTx(h.terms, h.funding, to, feeRate, ctx.wallet.key('escrow', rec.keyIndex).priv);
  try {
    await broadcastOnce(ctx.chain, tx.hex, tx.txid);
  } catch (e) {
    const tip = await ctx.chain.tipHeight();
    if (isSwarmpayError(e, 'TX_REJECTED') && tip < h.terms.timeout) {
      throw new SwarmpayError('ESCROW_TOO_EARLY', `${e.message} (escrow ${id} times out at height ${h.terms.timeout}; the tip is ${tip})`, {
        hint: `the refund becomes possible at height ${h.terms.timeout}, ${h.terms.timeout - tip} block${h.terms.timeout - tip === 1 ? '' : 's'} from now; nothing was changed`,
        details: { timeout: h.terms.timeout, tip, ...e.details },
      });
    }
    throw e;
  }
  const refunded: BuyerRefunded = { ...rec, status: 'refunded', refundTxid: tx.txid };
  await saveEscrow(ctx.session, refunded);
  return { txid: tx.txid, fee: tx.fee };
}
