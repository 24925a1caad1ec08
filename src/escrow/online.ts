/**
 * The online flow over the peer link. The seller (`escrow serve`) sends an offer and its
 * ciphertext to a buyer who asks, holds the offer for that buyer while the link is open
 * (so a second buyer cannot fund it meanwhile), takes the buyer's acceptance, and claims
 * every funded escrow by itself once its funding has the confirmations. An accepted offer
 * is sold only once its funding confirms: one whose funding is replaced or double-spent
 * before that is served again. A claim is seen through to its confirmation: broadcast again
 * if it leaves the mempool, bumped by CPFP if it waits. The buyer side fetches and hands
 * over the acceptance; funding is the same `acceptOffer` as from files.
 */
import { randomBytes } from 'node:crypto';
import { SwarmpayError } from '../errors.js';
import { nextBumpRate } from '../chain/fees.js';
import type { PeerLink } from '../peer/link.js';
import type { Conversation } from '../peer/conversation.js';
import type { ContractContext } from '../wallet/contract-wallet.js';
import { attest, type AttestationDoc } from '../tpm/attestation.js';
import { answerEnrollment } from '../tpm/enroll.js';
import { isEnrollmentMessage } from '../tpm/enroll-messages.js';
import type { Tpm } from '../tpm/tpm.js';
import { escrowConversation, escrowProtocol, BUYER_NONCE_BYTES, CHUNK_BYTES, type EscrowMessage } from './messages.js';
import { freshNonce, offerDigest, parseOffer, type Offer } from './offer.js';
import { htlcOf, htlcSpend } from './contract.js';
import { bumpClaim, claimConfirmations, claimEscrow, lookAtFunding, openOffers, parseAcceptance, pendingClaim, takeAcceptance } from './seller.js';
import { eachCiphertextChunk, listEscrows } from './store.js';
import type { Acceptance, SellerClaimed, SellerFunded } from './record.js';
import type { FeeRate } from '../bitcoin/fee-rate.js';
import { DEFAULT_BUMP_AFTER } from './defaults.js';

export { DEFAULT_BUMP_AFTER };

type EscrowConversation = Conversation<EscrowMessage>;

export interface ServeOptions {
  /** The claims' fee rate; null for the node's estimate at each claim. */
  feeRate: FeeRate | null;
  margin: number;
  /** Bump a claim once it has waited this many blocks unconfirmed since it went out or was last bumped; DEFAULT_BUMP_AFTER unless set. */
  bumpAfter?: number;
  log: (msg: string) => void;
  /**
   * The seller's TPM: it quotes an attested offer afresh for each buyer's nonce, and answers
   * a buyer who enrolls it (`tpm enroll`, between escrow messages). Absent, or resolving to
   * null: an attested offer goes out with no fresh quote (a buyer who requires attestation
   * refuses it), and enrollment is refused as TPM_UNAVAILABLE.
   */
  tpm?: () => Promise<Tpm | null>;
}

/** A claim this deep is not looked at again. */
const CLAIM_SETTLED_DEPTH = 6;

export class EscrowServer {
  /** Offer id → the buyer it is held for while that buyer funds it. */
  private readonly held = new Map<string, EscrowConversation>();
  private claiming: Promise<void> | null = null;
  /**
   * Escrow id → the height from which its claim has waited: when this server first saw it
   * out, or last bumped it. In memory: after a restart a claim waits from then.
   */
  private readonly waiting = new Map<string, number>();
  /** Escrows whose claim is buried CLAIM_SETTLED_DEPTH deep. */
  private readonly settled = new Set<string>();

  constructor(private readonly ctx: ContractContext, private readonly o: ServeOptions) {}

  /**
   * Serves one buyer until it hangs up; a refusal is sent to it as an error message. TPM
   * enrollment shares the link: each frame is told apart before either protocol reads it.
   */
  async serve(link: PeerLink): Promise<void> {
    const conv = escrowConversation(link, 0);
    const peer = link.remoteKey.toString('hex').slice(0, 16);
    try {
      for (;;) {
        const frame = await conv.nextFrame();
        if (frame === null) return;
        if (isEnrollmentMessage(frame)) {
          const tpm = this.o.tpm ? await this.o.tpm().catch(() => null) : null;
          const a = await answerEnrollment(tpm, link, frame);
          this.o.log(`${peer}: TPM enrollment ${a.request} ${a.refused ? `refused: ${a.refused.code}: ${a.refused.message}` : 'answered'}`);
          continue;
        }
        const m = escrowProtocol.parse(frame);
        try {
          if (m.t === 'get') await this.sendOffer(conv, m.id, m.nonce);
          else if (m.t === 'accepted') {
            const a = parseAcceptance(m.acceptance);
            if (this.held.get(a.offer) !== conv) throw new SwarmpayError('ESCROW_STATE', `offer ${a.offer} is not held for this buyer`, { hint: 'ask for the offer first' });
            await takeAcceptance(this.ctx, a, this.o.margin);
            this.held.delete(a.offer);
            this.o.log(`escrow ${a.offer}: accepted by ${peer}, funding ${a.funding.txid}`);
            conv.send({ t: 'taken', id: a.offer });
          } else throw new SwarmpayError('PEER_PROTOCOL', `a buyer does not send "${m.t}"`);
        } catch (e) {
          if (!(e instanceof SwarmpayError) || e.code === 'PEER_PROTOCOL') throw e;
          this.o.log(`${peer}: refused: ${e.code}: ${e.message}`);
          conv.send({ t: 'error', code: e.code, message: e.message });
        }
      }
    } catch (e) {
      this.o.log(`${peer}: ${e instanceof SwarmpayError ? `${e.code}: ` : ''}${(e as Error).message}`);
      if (e instanceof SwarmpayError) {
        try {
          conv.send({ t: 'error', code: e.code, message: e.message });
        } catch {
          /* the link is already gone */
        }
      }
    } finally {
      for (const [id, c] of this.held) if (c === conv) this.held.delete(id);
      await conv.close();
    }
  }

  /**
   * Sends an offer and its ciphertext a chunk at a time, each once the buyer has taken most
   * of what came before: however large the item, and however many gets a buyer sends, a
   * link holds a few hundred KiB.
   */
  private async sendOffer(conv: EscrowConversation, id: string | null, nonce: Buffer): Promise<void> {
    // Offers made since this server started (`escrow offer` is another process) are served too.
    await this.ctx.session.refresh();
    const open = openOffers(this.ctx).filter((r) => id === null || r.id === id);
    const rec = open[0];
    if (rec === undefined) throw new SwarmpayError('ESCROW_NOT_FOUND', id === null ? 'this seller has no open offer' : `no open offer ${id} here`);
    if (open.length > 1) throw new SwarmpayError('USAGE', `this seller has ${open.length} open offers: ${open.map((r) => r.id).join(', ')}`, { hint: 'name one: `swarmpay escrow accept OFFER-ID --peer …`' });
    const holder = this.held.get(rec.id);
    if (holder !== undefined && holder !== conv) throw new SwarmpayError('ESCROW_STATE', `offer ${rec.id} is being accepted by another buyer`, { hint: 'try again later' });
    this.held.set(rec.id, conv);
    const quote = await this.freshQuote(rec.offer, nonce);
    await eachCiphertextChunk(
      this.ctx.networkDir,
      rec.id,
      CHUNK_BYTES,
      (chunks) => conv.send({ t: 'offer', offer: rec.offer, chunks, quote }),
      async (i, data) => {
        conv.send({ t: 'chunk', i, data });
        await conv.link.drained();
      },
    );
  }

  /**
   * For an attested offer, a quote made now over the same PCRs as the offer's, with nonce
   * H(offer digest || the buyer's nonce): a quote the buyer knows was not made before it
   * asked. Null for an offer without attestation, or when this seller has no TPM at hand.
   */
  private async freshQuote(offer: Offer, nonce: Buffer): Promise<AttestationDoc | null> {
    if (offer.attestation === undefined) return null;
    const tpm = this.o.tpm ? await this.o.tpm().catch(() => null) : null;
    if (tpm === null) {
      this.o.log(`offer ${offer.id}: attested, but no TPM to quote for this buyer's nonce: sent without a fresh quote`);
      return null;
    }
    return attest(tpm, freshNonce(offerDigest(offer), nonce), Object.keys(offer.attestation.pcrs.values).map(Number));
  }

  /**
   * One look at every escrow this seller sells, one pass at a time: claims each funded one
   * whose funding has its confirmations, offers again each whose funding is gone before it
   * confirmed, and sees each claim through to its confirmation. One escrow's failure is
   * logged and does not stop the others.
   */
  claimReady(): Promise<void> {
    this.claiming ??= this.claimPass().finally(() => (this.claiming = null));
    return this.claiming;
  }

  private async claimPass(): Promise<void> {
    const tip = await this.ctx.chain.tipHeight();
    for (const rec of listEscrows(this.ctx.session)) {
      if (rec.role !== 'seller' || (rec.status !== 'funded' && rec.status !== 'claimed') || this.settled.has(rec.id)) continue;
      try {
        if (rec.status === 'funded') await this.claimFunded(rec, tip);
        else if (rec.status === 'claimed') await this.seeClaimThrough(rec, tip);
      } catch (e) {
        this.o.log(`escrow ${rec.id}: ${rec.status === 'funded' ? 'not claimed' : `claim ${rec.claimTxid}`}: ${e instanceof SwarmpayError ? `${e.code}: ` : ''}${(e as Error).message}`);
      }
    }
  }

  private async claimFunded(rec: SellerFunded, tip: number): Promise<void> {
    const view = await lookAtFunding(this.ctx, rec);
    if (view.kind === 'gone') {
      const open = view.rec.status === 'offered' && Date.parse(view.rec.offer.expires) > Date.now();
      this.o.log(`escrow ${rec.id}: the funding ${rec.acceptance.funding.txid} is gone before it confirmed (the node refuses it: ${view.reason}): not sold; ${open ? 'offered again' : 'the offer has expired'}`);
      return;
    }
    if (view.tx.confirmations < claimConfirmations(rec)) return;
    const r = await claimEscrow(this.ctx, rec.id, { feeRate: this.o.feeRate, margin: this.o.margin, force: false });
    this.waiting.set(rec.id, tip);
    this.o.log(`escrow ${rec.id}: claimed ${rec.offer.price} sats in ${r.txid}`);
  }

  /** A claim not in the mempool is made again; one that waited `bumpAfter` blocks (each block within the margin) is bumped. */
  private async seeClaimThrough(rec: SellerClaimed, tip: number): Promise<void> {
    const h = htlcOf(rec, this.ctx.network);
    const spend = await htlcSpend(this.ctx.chain, h);
    if (spend === null || spend.kind === 'refund' || spend.txid !== rec.claimTxid) {
      // claimEscrow reads the chain again: it records another claim found there, or the
      // buyer's refund (and says so), or makes the claim again: K is out, whatever the margin.
      const r = await claimEscrow(this.ctx, rec.id, { feeRate: this.o.feeRate, margin: this.o.margin, force: true });
      if (!this.waiting.has(rec.id)) this.waiting.set(rec.id, tip);
      if (r.fee !== null) this.o.log(`escrow ${rec.id}: the claim ${rec.claimTxid} had left the mempool; broadcast again${r.txid === rec.claimTxid ? '' : ` as ${r.txid}`}`);
      return;
    }
    if (spend.confirmations > 0) {
      this.waiting.delete(rec.id);
      if (spend.confirmations >= CLAIM_SETTLED_DEPTH) this.settled.add(rec.id);
      return;
    }
    const since = this.waiting.get(rec.id) ?? tip;
    this.waiting.set(rec.id, since);
    const every = h.terms.timeout - tip <= this.o.margin ? 1 : (this.o.bumpAfter ?? DEFAULT_BUMP_AFTER);
    if (tip - since < every) return;
    const pending = await pendingClaim(this.ctx, rec, spend.txid);
    const bump = await bumpClaim(this.ctx, pending, await nextBumpRate(this.ctx.chain, pending.feeRate));
    this.waiting.set(rec.id, tip);
    this.o.log(`escrow ${rec.id}: the claim ${spend.txid} waited ${tip - since} blocks; bumped to ${bump.feeRate} sat/vB by ${bump.txid}${bump.replaced === null ? '' : ` (replacing ${bump.replaced})`}`);
  }
}

/**
 * The buyer asks for an offer (by id, or the seller's only one) with a fresh random nonce,
 * and receives it with its ciphertext and the seller's quote for that nonce (null if none
 * came). `checkOffer` with `fresh: { nonce, quote }` verifies that quote.
 */
export async function fetchOffer(conv: EscrowConversation, id: string | null): Promise<{ offer: Offer; ciphertext: Buffer; nonce: Buffer; quote: unknown }> {
  const nonce = randomBytes(BUYER_NONCE_BYTES);
  conv.send({ t: 'get', id, nonce });
  const head = await conv.expect('offer');
  const offer = parseOffer(head.offer);
  if (id !== null && offer.id !== id) throw new SwarmpayError('PEER_PROTOCOL', `asked for offer ${id}, the seller sent ${offer.id}`);
  if (head.quote !== null && offer.attestation === undefined) throw new SwarmpayError('PEER_PROTOCOL', `the seller sent a quote with offer ${offer.id}, which is not attested`);
  const parts: Buffer[] = [];
  for (let i = 0; i < head.chunks; i++) {
    const c = await conv.expect('chunk');
    if (c.i !== i) throw new SwarmpayError('PEER_PROTOCOL', `chunk ${c.i} arrived where ${i} was expected`);
    parts.push(c.data);
  }
  return { offer, ciphertext: Buffer.concat(parts), nonce, quote: head.quote };
}

/** Hands the acceptance to the seller and waits for it to be taken. */
export async function sendAcceptance(conv: EscrowConversation, a: Acceptance): Promise<void> {
  conv.send({ t: 'accepted', acceptance: a });
  const m = await conv.expect('taken');
  if (m.id !== a.offer) throw new SwarmpayError('PEER_PROTOCOL', `the seller took ${m.id}, not ${a.offer}`);
}
