/**
 * An escrow as this wallet stores it: one type per status and role, so a field exists
 * exactly when its status has it.
 *
 *   seller:  offered → funded → claimed
 *                 ↖ (funding gone)  ↘ refunded (the buyer's refund beat the claim, or came first)
 *   buyer:   funded → completed | cheated | refunded
 *
 * The seller holds K from its offer on; the buyer learns it from the claim.
 */
import type { HtlcTemplate } from '../bitcoin/htlc.js';
import type { Outpoint } from '../bitcoin/outpoint.js';
import { ShapeError, asObj, hex, int, obj, str, type Obj } from '../util/shape.js';
import { readOffer, type Offer } from './offer.js';

export type EscrowRole = 'seller' | 'buyer';

/** What the buyer sends the seller (a file, or over the peer link) once the HTLC is funded. */
export interface Acceptance {
  format: 'swarmpay-acceptance';
  version: 1;
  offer: string;
  /** The buyer's escrow public key, hex. */
  buyer: string;
  /** The absolute timeout height of the HTLC. */
  timeout: number;
  funding: Outpoint;
  /** The signed funding transaction, so a seller whose node has not seen it can broadcast it. */
  tx: string;
}

interface Common {
  id: string;
  offer: Offer;
  /** Our key's index on the escrow key chain. */
  keyIndex: number;
  created: string;
}

/** An escrow whose HTLC is fixed: the buyer's key and timeout, its funding, its script. */
interface Accepted {
  acceptance: Acceptance;
  /** 'legacy' for escrows funded before the script checked the preimage's size. */
  htlc: HtlcTemplate;
}

/** The seller's K, hex: a secret until the claim reveals it. */
type SellerKey = { role: 'seller'; key: string };

export type SellerOffered = Common & SellerKey & { status: 'offered' };
export type SellerFunded = Common & SellerKey & Accepted & { status: 'funded' };
export type SellerClaimed = Common & SellerKey & Accepted & { status: 'claimed'; claimTxid: string };
/** The buyer took the coins back; `claimTxid` is the seller's claim the refund beat, if it made one. */
export type SellerRefunded = Common & SellerKey & Accepted & { status: 'refunded'; claimTxid: string | null; refundTxid: string };

export type BuyerFunded = Common & Accepted & { role: 'buyer'; status: 'funded' };
/** `key`: what the claim revealed, K (or, from a cheating seller of a legacy escrow, another preimage of H). */
export type BuyerCompleted = Common & Accepted & { role: 'buyer'; status: 'completed'; key: string; claimTxid: string };
/** The revealed key did not give the offer's item; the evidence is kept beside the ciphertext. */
export type BuyerCheated = Common & Accepted & { role: 'buyer'; status: 'cheated'; key: string; claimTxid: string };
export type BuyerRefunded = Common & Accepted & { role: 'buyer'; status: 'refunded'; refundTxid: string };

export type SellerRecord = SellerOffered | SellerFunded | SellerClaimed | SellerRefunded;
export type BuyerRecord = BuyerFunded | BuyerCompleted | BuyerCheated | BuyerRefunded;
export type EscrowRecord = SellerRecord | BuyerRecord;
export type EscrowStatus = EscrowRecord['status'];
/** Every escrow but an open offer: its HTLC is known. */
export type AcceptedRecord = Exclude<EscrowRecord, SellerOffered>;

/** Reads an acceptance field by field; ShapeError names the bad field under `where`. */
export function readAcceptance(v: unknown, where: string): Acceptance {
  const o = asObj(v, where);
  if (o.format !== 'swarmpay-acceptance' || o.version !== 1) throw new ShapeError(`${where} is not a version 1 swarmpay-acceptance`);
  const funding = obj(o, 'funding', where);
  return {
    format: 'swarmpay-acceptance',
    version: 1,
    offer: hex(o, 'offer', where, 8),
    buyer: hex(o, 'buyer', where, 33),
    timeout: int(o, 'timeout', where, 1, 499_999_999),
    funding: { txid: hex(funding, 'txid', `${where}.funding`, 32), vout: int(funding, 'vout', `${where}.funding`, 0, 10_000) },
    tx: hex(o, 'tx', where),
  };
}

/**
 * A record as read from the keystore, checked field by field: ShapeError names the bad
 * field under `where`. Records written before the statuses were types kept `key`,
 * `acceptance`, `claimTxid` and `refundTxid` beside every status, null where it had none,
 * and (before the size-checked script) no `htlc`: they read the same, the nulls their
 * status does not have dropped, a missing `htlc` read as 'legacy'.
 */
export function decodeEscrowRecord(v: unknown, where: string): EscrowRecord {
  const o = asObj(v, where);
  const common: Common = { id: hex(o, 'id', where, 8), offer: readOffer(o.offer, `${where}.offer`, true), keyIndex: int(o, 'keyIndex', where, 0, 2 ** 31 - 1), created: str(o, 'created', where) };
  if (common.offer.id !== common.id) throw new ShapeError(`${where}.offer.id is not ${where}.id`);
  const accepted = (): Accepted => ({ acceptance: readAcceptance(o.acceptance, `${where}.acceptance`), htlc: template(o, where) });
  const txid = (k: string) => hex(o, k, where, 32);
  const role = str(o, 'role', where);
  const status = str(o, 'status', where);
  if (role === 'seller') {
    const seller: Common & SellerKey = { ...common, role, key: hex(o, 'key', where, 32) };
    switch (status) {
      case 'offered':
        return { ...seller, status };
      case 'funded':
        return { ...seller, ...accepted(), status };
      case 'claimed':
        return { ...seller, ...accepted(), status, claimTxid: txid('claimTxid') };
      case 'refunded':
        return { ...seller, ...accepted(), status, claimTxid: o.claimTxid === null || o.claimTxid === undefined ? null : txid('claimTxid'), refundTxid: txid('refundTxid') };
    }
  } else if (role === 'buyer') {
    const buyer = { ...common, ...accepted(), role: 'buyer' as const };
    const revealed = () => ({ key: hex(o, 'key', where), claimTxid: txid('claimTxid') });
    switch (status) {
      case 'funded':
        return { ...buyer, status };
      case 'completed':
        return { ...buyer, ...revealed(), status };
      case 'cheated':
        return { ...buyer, ...revealed(), status };
      case 'refunded':
        return { ...buyer, status, refundTxid: txid('refundTxid') };
    }
  } else throw new ShapeError(`${where}.role must be seller or buyer`);
  throw new ShapeError(`${where}.status "${status.slice(0, 32)}" is not a status of a ${role}`);
}

function template(o: Obj, where: string): HtlcTemplate {
  if (o.htlc === undefined) return 'legacy';
  if (o.htlc !== 'size-checked' && o.htlc !== 'legacy') throw new ShapeError(`${where}.htlc must be size-checked or legacy`);
  return o.htlc;
}
