/**
 * Fair exchange through the library: an item sold for bitcoin through a hash-locked
 * contract (src/escrow/). The seller offers, serves and claims; the buyer accepts, then
 * recovers the item from the seller's claim or refunds after the timeout. Results are the
 * objects `escrow … --json` prints.
 */
import { SwarmpayError } from '../errors.js';
import { writeFileAtomic } from '../util/atomic-file.js';
import { connectPeer } from '../peer/connect.js';
import type { LinkOptions } from '../peer/link.js';
import type { ServerLimits } from '../peer/transports.js';
import { attest, type PcrAllowList } from '../tpm/attestation.js';
import { listIdentities } from '../tpm/trust-store.js';
import type { ContractContext } from '../wallet/contract-wallet.js';
import { acceptEscrow, type AcceptConsent, type AcceptedEscrow, type AcceptWarning, type OfferSource } from '../escrow/accept.js';
import { recoverItem, refundEscrow, type AcceptOptions } from '../escrow/buyer.js';
import { readAcceptanceFile, readOfferFiles } from '../escrow/files.js';
import { DEFAULT_BUMP_AFTER, EscrowServer } from '../escrow/online.js';
import { DEFAULT_CLAIM_MARGIN, claimEscrow, createOffer, takeAcceptance, type ClaimOptions } from '../escrow/seller.js';
import { getEscrow, listEscrows, writeEscrowFile } from '../escrow/store.js';
import type { EscrowRecord, EscrowRole, EscrowStatus } from '../escrow/record.js';
import type { Offer } from '../escrow/offer.js';
import type { Environment } from './environment.js';
import { peerAddress, startServer, type Listen, type PeerLocation, type Server } from './server.js';
import { waitForTx, type WaitHooks } from './wait.js';
import type { FeeRate } from '../bitcoin/fee-rate.js';

export type { AcceptConsent, AcceptedEscrow, AcceptWarning };

export interface OfferInput {
  item: Uint8Array;
  /** The item's name in the offer: a file name. */
  name: string;
  price: bigint;
  /** Blocks from acceptance to the buyer's refund that the seller accepts. */
  timeout: { min: number; max: number };
  /** Confirmations of the funding before the seller claims. */
  confirmations: number;
  /** Seconds until the offer expires. */
  expiresIn: number;
  /** Adds a quote of this device's TPM over these PCRs (SHA-256 bank), its nonce the offer's digest. */
  attest?: { pcrs: number[] };
  /** Writes the offer here and its ciphertext to OUT.enc (besides the copies kept in the datadir). */
  out?: string;
}

/** A new offer, as `escrow offer --json` prints it. */
export interface OfferMade {
  id: string;
  /** The offer file to give the buyer. */
  offer: string;
  /** Its ciphertext, to give beside it. */
  ciphertext: string;
  price: bigint;
  hash: string;
  attested: boolean;
  expires: string;
}

/** Where the buyer gets the offer: files, or the seller's `escrow serve`. */
export type AcceptFrom =
  /** The offer file and its ciphertext (default: OFFER.enc, else ID.enc beside the offer). */
  | { offer: string; ciphertext?: string }
  /** HOST:PORT or a command; `peerKey` (hex) pins the seller's link key; `id` names the offer (default: the seller's only one). */
  | { peer: PeerLocation; peerKey?: string; id?: string };

export interface AcceptInput {
  /** Refuse an offer that asks more. Required when there is no `confirm`: nobody agreed to any price. */
  maxPrice?: bigint;
  /** Refuse an offer without a valid attestation by an AK enrolled (`tpm enroll`) or pinned (`ak`). */
  requireAttestation?: boolean;
  /** PCR values accepted; implies requireAttestation. */
  expectPcrs?: PcrAllowList;
  /** The seller TPM's AK public key (PEM) trusted; implies requireAttestation. */
  ak?: string;
  /** Only an AK enrolled with `tpm enroll` will do; implies requireAttestation. */
  enrolled?: boolean;
  /** Blocks until the refund is possible (default 144, within what the offer accepts). */
  timeoutBlocks?: number;
  feeRate: FeeRate;
  /** Also write the acceptance for the seller here. */
  out?: string;
  /** Asked with the funding built, before anything is paid; false cancels (USAGE, nothing paid). */
  confirm?: (s: AcceptConsent) => Promise<boolean>;
  /** What the buyer should know before it pays: an unvouched or replayable quote, a seller key learned on first use. */
  warn?: (message: string, kind: AcceptWarning) => void;
}

/** What a claim waits for, with `wait`. */
export type ClaimProgress = { waitingFor: 'claim'; tip: number; timeout: number } | { waitingFor: 'funding'; confirmations: number; wanted: number };

export interface ClaimInput extends WaitHooks {
  /** Seller: the acceptance file the buyer sent, taken before the claim. */
  acceptance?: string;
  /** Buyer: where the item is written (required). */
  out?: string;
  /** Seller: wait for the funding's confirmations; buyer: wait for the seller's claim. Both are waits on the funding (its txid to onBroadcast). */
  wait?: boolean;
  /** Seller: claim even within `margin` blocks of the timeout (races the buyer's refund). */
  force?: boolean;
  /** Seller: blocks before the timeout from which claiming is refused; default 6. */
  margin?: number;
  /** Seller: the claim's fee rate; default the node's estimate (at least 2 sat/vB). */
  feeRate?: FeeRate;
  onProgress?: (p: ClaimProgress) => void;
}

/** A claim, as `escrow claim --json` prints it: the buyer's item, or the seller's coins. */
export type Claimed =
  | { id: string; role: 'buyer'; claimTxid: string; item: string; size: number; sha256: string; itemMatches: true }
  | { id: string; role: 'seller'; claimTxid: string; fee: bigint | null; feeRate: FeeRate | null; price: bigint };

export interface Refunded {
  id: string;
  refundTxid: string;
  /** Null when it was refunded before. */
  fee: bigint | null;
}

/** One escrow, as `escrow show --json` (and each of `escrow list --json`) prints it. */
export interface EscrowSummary {
  id: string;
  role: EscrowRole;
  status: EscrowStatus;
  item: Offer['item'];
  price: bigint;
  attested: boolean;
  expires: string;
  timeout: number | null;
  fundingTxid: string | null;
  claimTxid: string | null;
  refundTxid: string | null;
}

export interface EscrowServeOptions {
  listen: Listen;
  /** Refuse acceptances and claims this near the timeout; default 6. */
  margin?: number;
  /** The claims' fee rate; default the node's estimate at each claim. */
  feeRate?: FeeRate;
  /** Bump a claim by CPFP once it has waited this many blocks (every block within the margin); default 2. */
  bumpAfter?: number;
  limits?: LinkOptions & ServerLimits;
  /** How often fundings and claims are looked at, ms. */
  pollMs?: number;
  log?: (msg: string) => void;
}

export class Escrows {
  constructor(
    readonly ctx: ContractContext,
    readonly env: Environment,
  ) {}

  /** The seller: encrypts the item under a fresh key K and signs an offer of it for H = SHA-256(K). */
  /** Refuses terms no buyer could accept before anything is unlocked or asked; offer() checks them too. */
  static checkOffer(o: Pick<OfferInput, 'timeout'>): void {
    if (o.timeout.min > o.timeout.max) throw new SwarmpayError('USAGE', `--timeout ${o.timeout.min} is above --max-timeout ${o.timeout.max}`);
  }

  async offer(o: OfferInput): Promise<OfferMade> {
    Escrows.checkOffer(o);
    const pcrs = o.attest?.pcrs;
    const tpm = pcrs === undefined ? null : await this.env.tpm();
    const r = await createOffer(this.ctx, {
      name: o.name, item: o.item, price: o.price, timeout: o.timeout, confirmations: o.confirmations, expiresIn: o.expiresIn,
      ...(tpm !== null && pcrs !== undefined ? { attest: (nonce: Buffer) => attest(tpm, nonce, pcrs) } : {}),
    });
    const text = JSON.stringify(r.offer, null, 2) + '\n';
    const kept = writeEscrowFile(this.ctx.networkDir, `${r.offer.id}.offer.json`, text);
    if (o.out !== undefined) {
      writeFileAtomic(o.out, text, 0o644);
      writeFileAtomic(`${o.out}.enc`, r.ciphertext, 0o644);
    }
    return {
      id: r.offer.id,
      offer: o.out ?? kept,
      ciphertext: o.out !== undefined ? `${o.out}.enc` : r.ciphertextFile,
      price: o.price,
      hash: r.offer.hash,
      attested: r.offer.attestation !== undefined,
      expires: r.offer.expires,
    };
  }

  /**
   * The buyer: checks the offer (signature, network, expiry, price, ciphertext, attestation
   * as asked), says what it should know (`warn`), asks (`confirm`), funds the HTLC and
   * writes the acceptance; online, hands it to the seller. Accepting again pays nothing twice.
   */
  /**
   * Refuses what no offer could make acceptable (no consent and no price cap, --ak with
   * --enrolled, a malformed offer id) before anything is unlocked or asked; accept() checks it too.
   */
  static checkAccept(from: AcceptFrom, o: AcceptInput): void {
    if (o.confirm === undefined && o.maxPrice === undefined) {
      throw new SwarmpayError('USAGE', 'escrow accept needs --max-price when it cannot ask (no terminal, or --yes): it would pay whatever the offer names', { hint: 'pass --max-price SATS; nothing was paid' });
    }
    if (o.enrolled && o.ak !== undefined) throw new SwarmpayError('USAGE', 'give --ak or --enrolled, not both', { hint: '--enrolled trusts every AK `tpm trust list` shows; --ak one key' });
    if ('peer' in from && from.id !== undefined && !/^[0-9a-f]{16}$/.test(from.id)) throw new SwarmpayError('USAGE', `with --peer or --peer-cmd, "${from.id}" must be an offer id (16 hex digits)`);
  }

  async accept(from: AcceptFrom, o: AcceptInput): Promise<AcceptedEscrow> {
    Escrows.checkAccept(from, o);
    // Expecting PCR values or an AK of a quote is asking for one: an offer without it is refused.
    // The trust store is always consulted: an enrolled AK is vouched for. `enrolled` accepts only such a one.
    const checks: AcceptOptions['checks'] = {
      requireAttestation: !!o.requireAttestation || o.expectPcrs !== undefined || o.ak !== undefined || !!o.enrolled,
      enrolled: listIdentities(this.ctx.networkDir),
      ...(o.enrolled ? { requireEnrolled: true } : {}),
      ...(o.maxPrice === undefined ? {} : { maxPrice: o.maxPrice }),
      ...(o.expectPcrs === undefined ? {} : { expectPcrs: o.expectPcrs }),
      ...(o.ak === undefined ? {} : { ak: o.ak }),
    };
    const source = this.offerSource(from);
    return acceptEscrow(this.ctx, source, {
      checks,
      feeRate: o.feeRate,
      warn: o.warn ?? (() => undefined),
      ...(o.timeoutBlocks === undefined ? {} : { timeoutBlocks: o.timeoutBlocks }),
      ...(o.confirm === undefined ? {} : { confirm: o.confirm }),
      ...(o.out === undefined ? {} : { out: o.out }),
    });
  }

  private offerSource(from: AcceptFrom): OfferSource {
    if ('offer' in from) return { kind: 'offer', ...readOfferFiles(from.offer, from.ciphertext) };
    const address = peerAddress(from.peer);
    return {
      kind: 'peer',
      connect: () => connectPeer(address, this.ctx.wallet.peerKey, from.peerKey, this.env.opts.peerStderr),
      id: from.id ?? null,
      pinned: from.peerKey !== undefined,
      viaCommand: address.kind === 'cmd',
    };
  }

  /**
   * The buyer: reads K from the seller's claim and recovers the item (SELLER_CHEATED, the
   * evidence kept, if it is not the offer's). The seller: takes an acceptance if given, then
   * claims the coins by revealing K, once the funding has its confirmations and not so near
   * the timeout that the claim races the refund.
   */
  async claim(id: string, o: ClaimInput = {}): Promise<Claimed> {
    const acceptance = o.acceptance === undefined ? null : readAcceptanceFile(o.acceptance);
    const rec = getEscrow(this.ctx.session, id);
    const pollMs = this.env.network === 'regtest' ? 200 : 10_000;
    const progress = o.onProgress ?? (() => undefined);
    if (rec.role === 'buyer') {
      if (o.out === undefined) throw new SwarmpayError('USAGE', 'as the buyer, give --out FILE for the item');
      const out = o.out;
      const r =
        o.wait && rec.status === 'funded'
          ? await waitForTx(
              rec.acceptance.funding.txid,
              o,
              { stands: 'the seller may still claim', hint: `\`swarmpay escrow claim ${id} --out FILE --wait\` waits again; from height ${rec.acceptance.timeout} on, \`swarmpay escrow refund ${id}\` takes the coins back` },
              (timeoutMs) => recoverItem(this.ctx, id, out, { wait: { pollMs, timeoutMs, onWait: (tip, timeout) => progress({ waitingFor: 'claim', tip, timeout }) } }),
            )
          : await recoverItem(this.ctx, id, out);
      return { id, role: 'buyer', claimTxid: r.claimTxid, item: r.file, size: r.size, sha256: r.sha256, itemMatches: true };
    }
    const margin = o.margin ?? DEFAULT_CLAIM_MARGIN;
    if (acceptance !== null) {
      if (acceptance.offer !== id) throw new SwarmpayError('INVALID_FILE', `the acceptance is for offer ${acceptance.offer}, not ${id}`, { hint: 'nothing was changed' });
      await takeAcceptance(this.ctx, acceptance, margin);
    }
    const claim = (wait?: ClaimOptions['wait']) =>
      claimEscrow(this.ctx, id, {
        // Without a fee rate, the node's estimate when the claim is made (after any wait).
        feeRate: o.feeRate ?? null,
        margin,
        force: !!o.force,
        ...(wait ? { wait } : {}),
      });
    const sold = acceptance === null ? rec : getEscrow(this.ctx.session, id);
    const r =
      o.wait && sold.status !== 'offered'
        ? await waitForTx(
            sold.acceptance.funding.txid,
            o,
            { stands: 'nothing was claimed, and the buyer\'s funding may still confirm', hint: `\`swarmpay escrow claim ${id} --wait\` waits again (claims are refused from height ${sold.acceptance.timeout - margin} on)` },
            (timeoutMs) => claim({ pollMs, timeoutMs, onProgress: (confirmations, wanted) => progress({ waitingFor: 'funding', confirmations, wanted }) }),
          )
        : await claim();
    return { id, role: 'seller', claimTxid: r.txid, fee: r.fee, feeRate: r.feeRate, price: BigInt(rec.offer.price) };
  }

  /** The buyer: takes the coins back after the timeout if the seller never claimed (ESCROW_TOO_EARLY before it). */
  async refund(id: string, feeRate: FeeRate): Promise<Refunded> {
    const r = await refundEscrow(this.ctx, id, feeRate);
    return { id, refundTxid: r.txid, fee: r.fee };
  }

  list(): { escrows: EscrowSummary[] } {
    return { escrows: listEscrows(this.ctx.session).map(summary) };
  }

  show(id: string): EscrowSummary {
    return summary(getEscrow(this.ctx.session, id));
  }

  /**
   * The seller's server: serves its open offers (a fresh TPM quote for each buyer's nonce,
   * if this device has a TPM), takes acceptances, answers TPM enrollment, and claims each
   * escrow once its funding confirms, seeing each claim through (sent again, bumped). Its
   * stop makes a last pass at the claims.
   */
  serve(o: EscrowServeOptions): Promise<Server> {
    const log = o.log ?? (() => undefined);
    const server = new EscrowServer(this.ctx, {
      feeRate: o.feeRate ?? null,
      margin: o.margin ?? DEFAULT_CLAIM_MARGIN,
      bumpAfter: o.bumpAfter ?? DEFAULT_BUMP_AFTER,
      log,
      tpm: () => this.env.tpmIfAny(),
    });
    return startServer(
      { key: this.ctx.wallet.peerKey, serve: (link) => server.serve(link), tick: () => server.claimReady(), shutdown: () => server.claimReady() },
      { listen: o.listen, log, ...(o.limits === undefined ? {} : { limits: o.limits }), ...(o.pollMs === undefined ? {} : { pollMs: o.pollMs }) },
    );
  }
}

function summary(rec: EscrowRecord): EscrowSummary {
  const accepted = rec.status === 'offered' ? null : rec.acceptance;
  return {
    id: rec.id,
    role: rec.role,
    status: rec.status,
    item: rec.offer.item,
    price: BigInt(rec.offer.price),
    attested: rec.offer.attestation !== undefined,
    expires: rec.offer.expires,
    timeout: accepted?.timeout ?? null,
    fundingTxid: accepted?.funding.txid ?? null,
    claimTxid: 'claimTxid' in rec ? rec.claimTxid : null,
    refundTxid: 'refundTxid' in rec ? rec.refundTxid : null,
  };
}
