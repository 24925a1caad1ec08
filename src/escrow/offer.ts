/**
 * The seller's offer (version 1): a JSON document naming the item by its SHA-256, the
 * ciphertext that travels beside it, H = SHA-256(K), the price and the timeouts the seller
 * accepts, signed by the seller's escrow key over its canonical form; optionally with a
 * TPM quote whose nonce is the offer's digest, binding it to the attested software. And
 * the item's encryption under K (AES-256-GCM), which the buyer opens once K is on chain.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { ecc, signDigest } from '../bitcoin/ecc.js';
import { SwarmpayError } from '../errors.js';
import { MAX_MONEY } from '../bitcoin/amount.js';
import { sha256 } from '../bitcoin/htlc.js';
import { parseNetworkName, type NetworkName } from '../bitcoin/network.js';
import { canonicalJson, type Json } from '../util/canonical-json.js';
import { ShapeError, asObj, hex, int, obj, str } from '../util/shape.js';
import { verifyAttestation, verifyEnrolledAttestation, type AttestationDoc, type EnrolledAttestation, type PcrAllowList, type VerifiedAttestation } from '../tpm/attestation.js';
import type { TrustedIdentity } from '../tpm/trust-store.js';
import { MAX_ITEM_BYTES } from './defaults.js';

export { MAX_ITEM_BYTES };

const OFFER_FORMAT = 'swarmpay-offer';
const OFFER_VERSION = 1;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const ITEM_AAD = Buffer.from('swarmpay/item/v1');
/** Domain separation: an offer signature can never be read as a signature over anything else. */
const OFFER_TAG = 'swarmpay/offer/v1\0';

/** The signed part of an offer; amounts are decimal strings. */
export interface OfferBody {
  format: typeof OFFER_FORMAT;
  version: typeof OFFER_VERSION;
  id: string;
  network: NetworkName;
  item: { name: string; size: number; sha256: string };
  ciphertext: { size: number; sha256: string };
  /** H = SHA-256(K), hex. */
  hash: string;
  price: string;
  /** Blocks from acceptance to the timeout height that the seller accepts. */
  timeout: { min: number; max: number };
  /** Confirmations of the funding the seller waits for before it claims. */
  confirmations: number;
  /** The seller's escrow public key (33 bytes, hex): it signs the offer and claims the coins. */
  seller: string;
  /** ISO 8601 time after which the buyer must not accept. */
  expires: string;
}

export interface Offer extends OfferBody {
  /** 64-byte compact ECDSA signature of the offer digest by `seller`. */
  signature: string;
  attestation?: AttestationDoc;
}

function offerInvalid(message: string, hint = 'the offer was altered or not made by swarmpay; nothing was paid'): SwarmpayError {
  return new SwarmpayError('OFFER_INVALID', message, { hint });
}

function bodyOf(o: OfferBody): OfferBody {
  const { format, version, id, network, item, ciphertext, hash, price, timeout, confirmations, seller, expires } = o;
  return { format, version, id, network, item: { ...item }, ciphertext: { ...ciphertext }, hash, price, timeout: { ...timeout }, confirmations, seller, expires };
}

/** What the seller signs and the TPM quotes: SHA-256 of the tagged canonical body. */
export function offerDigest(o: OfferBody): Buffer {
  // The body is JSON through and through (strings, integers, objects of them), which TypeScript cannot see of an interface.
  return sha256(Buffer.from(OFFER_TAG + canonicalJson(bodyOf(o) as unknown as Json)));
}

export function signOffer(body: OfferBody, sellerPriv: Uint8Array): Offer {
  return { ...bodyOf(body), signature: Buffer.from(signDigest(offerDigest(body), sellerPriv)).toString('hex') };
}

/** An item name as shown to the buyer: a file name, never a path. */
const ITEM_NAME = /^[^/\\\0]{1,255}$/;
const DECIMAL_SATS = /^(0|[1-9][0-9]{0,15})$/;

/** Reads an offer field by field; anything out of shape is OFFER_INVALID. */
export function parseOffer(v: unknown): Offer {
  try {
    return readOffer(v, 'offer');
  } catch (e) {
    if (e instanceof ShapeError) throw offerInvalid(`not a valid offer: ${e.message}`);
    throw e;
  }
}

/**
 * Reads an offer field by field (its signature and attestation are checkOffer's); ShapeError
 * names the bad field under `w`. `stored`: an offer this wallet's keystore holds, read with
 * the bounds it was made under (the first escrow version took --confirmations 0), so that
 * no record a user has is refused.
 */
export function readOffer(v: unknown, w: string, stored = false): Offer {
  const o = asObj(v, w);
  if (o.format !== OFFER_FORMAT) throw new ShapeError(`${w}.format is not "${OFFER_FORMAT}"`);
  if (o.version !== OFFER_VERSION) throw new ShapeError(`${w}.version ${String(o.version)} is not ${OFFER_VERSION}`);
  const item = obj(o, 'item', w);
  const ct = obj(o, 'ciphertext', w);
  const timeout = obj(o, 'timeout', w);
  const name = str(item, 'name', `${w}.item`);
  if (!ITEM_NAME.test(name)) throw new ShapeError(`${w}.item.name must be a file name (1-255 characters, no slashes)`);
  const price = str(o, 'price', w);
  if (!DECIMAL_SATS.test(price) || BigInt(price) <= 0n || BigInt(price) > MAX_MONEY) throw new ShapeError(`${w}.price must be an amount in sats`);
  const expires = str(o, 'expires', w);
  if (Number.isNaN(Date.parse(expires))) throw new ShapeError(`${w}.expires must be an ISO 8601 time`);
  let network: NetworkName;
  try {
    network = parseNetworkName(str(o, 'network', w));
  } catch {
    throw new ShapeError(`${w}.network is not a Bitcoin network`);
  }
  const offer: Offer = {
    format: OFFER_FORMAT,
    version: OFFER_VERSION,
    id: hex(o, 'id', w, 8),
    network,
    item: { name, size: int(item, 'size', `${w}.item`, 0, MAX_ITEM_BYTES), sha256: hex(item, 'sha256', `${w}.item`, 32) },
    ciphertext: { size: int(ct, 'size', `${w}.ciphertext`, IV_BYTES + TAG_BYTES, MAX_ITEM_BYTES + IV_BYTES + TAG_BYTES), sha256: hex(ct, 'sha256', `${w}.ciphertext`, 32) },
    hash: hex(o, 'hash', w, 32),
    price,
    timeout: { min: int(timeout, 'min', `${w}.timeout`, 1, 52_560), max: int(timeout, 'max', `${w}.timeout`, 1, 52_560) },
    confirmations: int(o, 'confirmations', w, stored ? 0 : 1, 100),
    seller: hex(o, 'seller', w, 33),
    expires,
    signature: hex(o, 'signature', w, 64),
  };
  if (offer.timeout.min > offer.timeout.max) throw new ShapeError(`${w}.timeout.min is above ${w}.timeout.max`);
  // Only its being an object is checked here: checkOffer verifies the document before anything relies on it.
  if (o.attestation !== undefined) offer.attestation = asObj(o.attestation, `${w}.attestation`) as unknown as AttestationDoc;
  return offer;
}

export interface OfferChecks {
  network: NetworkName;
  now: Date;
  maxPrice?: bigint;
  ciphertext?: Uint8Array;
  /** Refuse an offer without an attestation, or whose AK nobody vouches for (neither `ak` nor `enrolled`). */
  requireAttestation?: boolean;
  /** PCR values the buyer accepts; implies `requireAttestation`. */
  expectPcrs?: PcrAllowList;
  /** The seller TPM's AK (PEM) the buyer pinned: the attestation must be by this key, and it vouches for it. */
  ak?: string;
  /**
   * The buyer's trust store (`listIdentities`): an attestation by one of these AKs is vouched
   * for by the identity that enrolled it. Consulted whenever given; the CLI always gives it.
   */
  enrolled?: readonly TrustedIdentity[];
  /** Only an enrolled AK will do (`--enrolled`): pinning it with `ak` is not enough. Implies `requireAttestation`. */
  requireEnrolled?: boolean;
  /**
   * The online flow: the nonce the buyer sent with its `get` and the quote the seller made
   * for it (null: the seller had none to make). An attested offer is then verified by this
   * quote, whose nonce must be freshNonce(offer digest, nonce), not by the offer's own quote,
   * which anyone holding the offer can replay. Absent (the file flow): the offer's own quote.
   */
  fresh?: { nonce: Uint8Array; quote: unknown };
}

/** The nonce of the seller's fresh quote for a buyer: SHA-256(offer digest || the buyer's nonce). */
export function freshNonce(digest: Uint8Array, buyerNonce: Uint8Array): Buffer {
  return sha256(Buffer.concat([digest, buyerNonce]));
}

/** An offer's attestation as the buyer verified it, and who vouches for its AK. */
export interface OfferAttestation extends VerifiedAttestation {
  /** Someone vouches for the AK: the buyer pinned it (`ak`) or enrolled it (`vouchedBy`). Otherwise the quote proves only that some TPM key, of any device, signed it. */
  akVouched: boolean;
  /** The enrolled identity of the AK (its EK certificate and CA), or null if it is not enrolled. */
  vouchedBy: EnrolledAttestation['vouchedBy'] | null;
  /**
   * The quote was made for this buyer's nonce (online); false: it is the offer's own quote
   * (nonce = the offer digest, the file flow), which may be a replay of one made long ago.
   */
  fresh: boolean;
}

/** The refusal of a valid attestation whose AK the buyer does not trust. */
function unvouched(akName: string, why: string): SwarmpayError {
  return new SwarmpayError('ATTESTATION_INVALID', `the offer's attestation is by TPM key ${akName}, ${why}: nothing ties it to a TPM you trust`, {
    hint: "enroll the seller's TPM first (`swarmpay tpm enroll --peer HOST:PORT --tpm-ca FILE`), or pin its AK with --ak; nothing was paid",
  });
}

/**
 * The buyer's checks before any coin moves: the seller's signature, the network, the
 * expiry, the price cap, the ciphertext against its hash, and the attestation: verified
 * whenever present, its AK looked up among the pinned one and the enrolled ones. Required
 * (`requireAttestation`, `expectPcrs`, `requireEnrolled`), it must be there and be by an AK
 * someone vouches for; otherwise an unvouched one passes, and `akVouched: false` says so.
 */
export function checkOffer(offer: Offer, c: OfferChecks): { attestation: OfferAttestation | null } {
  const digest = offerDigest(offer);
  const pub = Buffer.from(offer.seller, 'hex');
  const sig = Buffer.from(offer.signature, 'hex');
  const scalars = ecc().isPoint(pub) && ecc().isPrivate(sig.subarray(0, 32)) && ecc().isPrivate(sig.subarray(32));
  if (!scalars || !ecc().verify(digest, pub, sig, true)) throw offerInvalid("the seller's signature over the offer does not verify");
  if (offer.network !== c.network) {
    throw new SwarmpayError('WRONG_NETWORK', `the offer is for ${offer.network}, not ${c.network}`, { hint: `accept it with --network ${offer.network}; nothing was paid` });
  }
  if (Date.parse(offer.expires) <= c.now.getTime()) {
    throw new SwarmpayError('OFFER_EXPIRED', `the offer expired at ${offer.expires}`, { hint: 'ask the seller for a new offer; nothing was paid' });
  }
  if (c.maxPrice !== undefined && BigInt(offer.price) > c.maxPrice) {
    throw new SwarmpayError('PRICE_ABOVE_LIMIT', `the offer asks ${offer.price} sats, above --max-price ${c.maxPrice}`, { hint: 'raise --max-price if you agree to the price; nothing was paid' });
  }
  if (c.ciphertext !== undefined) checkCiphertext(offer, c.ciphertext);
  const required = !!c.requireAttestation || c.expectPcrs !== undefined || !!c.requireEnrolled;
  if (offer.attestation === undefined) {
    if (required) throw new SwarmpayError('ATTESTATION_INVALID', 'the offer carries no attestation, and --require-attestation asks for one', { hint: 'ask the seller for an offer made with --attest; nothing was paid' });
    return { attestation: null };
  }
  // Online, the quote the seller made for this buyer's nonce stands in for the offer's own.
  let doc: unknown = offer.attestation;
  let nonce: Buffer = digest;
  if (c.fresh !== undefined) {
    if (c.fresh.quote === null) {
      if (required) {
        throw new SwarmpayError('ATTESTATION_INVALID', 'the offer is attested, but the seller made no fresh quote for your nonce (its `escrow serve` has no TPM at hand): the offer\'s own quote could be a replay', {
          hint: 'ask the seller to serve with its TPM (--tpm); nothing was paid',
        });
      }
      return { attestation: null };
    }
    doc = c.fresh.quote;
    nonce = freshNonce(digest, c.fresh.nonce);
    const said = typeof (doc as { nonce?: unknown }).nonce === 'string' ? (doc as { nonce: string }).nonce : null;
    if (said !== nonce.toString('hex')) {
      throw new SwarmpayError('ATTESTATION_INVALID', `the seller's quote was made for nonce ${said === null ? '(none)' : said.slice(0, 64)}, not H(offer digest || your nonce) ${nonce.toString('hex')}: the quote's nonce is not this buyer's, it is stale or replayed`, {
        hint: 'the seller did not quote its TPM for you now; nothing was paid',
      });
    }
  }
  const opts: Parameters<typeof verifyAttestation>[1] = { nonce };
  if (c.expectPcrs !== undefined) opts.expectPcrs = c.expectPcrs;
  const akOf = (d: unknown) => (typeof d === 'object' && d !== null && typeof (d as { akName?: unknown }).akName === 'string' ? (d as { akName: string }).akName : null);
  const claimed = akOf(doc);
  const identity = claimed === null ? undefined : c.enrolled?.find((i) => i.akName === claimed);
  let v: VerifiedAttestation;
  let vouchedBy: OfferAttestation['vouchedBy'] = null;
  if (identity !== undefined) {
    // Verified with the enrolled key pinned (and the buyer's own pin, if any, checked too).
    const e = verifyEnrolledAttestation(doc, { ...opts, enrolled: [identity] });
    if (c.ak !== undefined) verifyAttestation(doc, { ...opts, ak: c.ak });
    v = e;
    vouchedBy = e.vouchedBy;
  } else {
    // Whatever else is wrong with the document is said before that nobody vouches for it.
    v = verifyAttestation(doc, c.ak === undefined ? opts : { ...opts, ak: c.ak });
    if (c.requireEnrolled) throw unvouched(v.akName, c.ak === undefined ? 'which is not enrolled' : 'which you pinned but did not enroll, and --enrolled asks for an enrolled one');
    if (!v.akPinned && required) throw unvouched(v.akName, 'which nobody vouches for (neither enrolled nor pinned with --ak)');
  }
  if (c.fresh !== undefined && v.akName !== akOf(offer.attestation)) {
    throw new SwarmpayError('ATTESTATION_INVALID', `the seller's fresh quote is by TPM key ${v.akName}, not by ${String(akOf(offer.attestation))} that attested the offer`, { hint: 'the offer was attested on another device than the one serving it; nothing was paid' });
  }
  return { attestation: { ...v, akVouched: v.akPinned || vouchedBy !== null, vouchedBy, fresh: c.fresh !== undefined } };
}

function checkCiphertext(offer: OfferBody, ciphertext: Uint8Array): void {
  if (ciphertext.length !== offer.ciphertext.size || sha256(ciphertext).toString('hex') !== offer.ciphertext.sha256) {
    throw new SwarmpayError('CIPHERTEXT_MISMATCH', `the ciphertext (${ciphertext.length} bytes, SHA-256 ${sha256(ciphertext).toString('hex')}) is not the one the offer names`, {
      hint: 'get the ciphertext that came with this offer; nothing was paid',
    });
  }
}

/** The item under K: IV || AES-256-GCM ciphertext || tag. */
function encryptItem(item: Uint8Array, k: Uint8Array): Buffer {
  const iv = randomBytes(IV_BYTES);
  const c = createCipheriv('aes-256-gcm', k, iv);
  c.setAAD(ITEM_AAD);
  const body = Buffer.concat([c.update(item), c.final()]);
  return Buffer.concat([iv, body, c.getAuthTag()]);
}

/** The item, or null if the ciphertext was not made with K (the tag does not verify). */
export function decryptItem(ciphertext: Uint8Array, k: Uint8Array): Buffer | null {
  if (ciphertext.length < IV_BYTES + TAG_BYTES) return null;
  const ct = Buffer.from(ciphertext);
  try {
    const d = createDecipheriv('aes-256-gcm', k, ct.subarray(0, IV_BYTES));
    d.setAAD(ITEM_AAD);
    d.setAuthTag(ct.subarray(ct.length - TAG_BYTES));
    return Buffer.concat([d.update(ct.subarray(IV_BYTES, ct.length - TAG_BYTES)), d.final()]);
  } catch {
    return null;
  }
}

/** A fresh offer body with its key K and ciphertext: what `escrow offer` signs and keeps. */
export function draftOffer(p: {
  id: string;
  network: NetworkName;
  name: string;
  item: Uint8Array;
  price: bigint;
  timeout: { min: number; max: number };
  confirmations: number;
  seller: Uint8Array;
  expires: Date;
}): { body: OfferBody; key: Buffer; ciphertext: Buffer } {
  if (!ITEM_NAME.test(p.name)) throw new SwarmpayError('USAGE', `the item name "${p.name}" is not a file name`);
  if (p.item.length > MAX_ITEM_BYTES) throw new SwarmpayError('USAGE', `the item is ${p.item.length} bytes; offers carry at most ${MAX_ITEM_BYTES}`);
  const key = randomBytes(32);
  const ciphertext = encryptItem(p.item, key);
  const body: OfferBody = {
    format: OFFER_FORMAT,
    version: OFFER_VERSION,
    id: p.id,
    network: p.network,
    item: { name: p.name, size: p.item.length, sha256: sha256(p.item).toString('hex') },
    ciphertext: { size: ciphertext.length, sha256: sha256(ciphertext).toString('hex') },
    hash: sha256(key).toString('hex'),
    price: p.price.toString(),
    timeout: { ...p.timeout },
    confirmations: p.confirmations,
    seller: Buffer.from(p.seller).toString('hex'),
    expires: p.expires.toISOString(),
  };
  return { body, key, ciphertext };
}
