/**
 * A channel as this wallet stores it: the terms both sides agreed, and where the channel
 * is in its life. The life is a state machine over the chain (DESIGN.md, "Payment
 * channel"), one type per status, so a field exists exactly when its status has it:
 *
 *   opening → open → closing → closed
 *                  ↘ expired ↗        and, from open, expired or closing:
 *                              refunding → refunded
 *   opening, open or expired → failed (the funding never made it to the chain)
 *
 * Only the payer has `opening`: the payee stores a channel once it is funded
 * (src/channel/ticket.ts), so an open nobody funds costs it nothing.
 */
import type { ChannelTerms } from '../bitcoin/channel.js';
import type { Outpoint } from '../bitcoin/outpoint.js';
import type { PeerAddress } from '../peer/connect.js';

export type { PeerAddress };
export type Role = 'payer' | 'payee';

/** The terms as stored: amounts as decimal strings, keys and scripts as hex. */
export interface StoredTerms {
  payerPubkey: string;
  payeePubkey: string;
  expiry: number;
  capacity: string;
  closeFee: string;
  payeeScript: string;
  payerScript: string;
}

/** The funding output. (Only an opening payer keeps the funding transaction itself, to broadcast it again.) */
export type Funding = Outpoint;

/** A CPFP child that raised a pending close's (or refund's) fee. */
export interface Bump {
  txid: string;
  /** The package fee rate it was built for, sat/vB. */
  feeRate: string;
  fee: string;
  vsize: number;
  /** The tip when it was broadcast. */
  height: number;
}

/** A transaction spending the funding output: the close (both keys) or the payer's refund. */
export interface SpendTx {
  txid: string;
  /** The tip when this wallet broadcast it or first saw it. */
  height: number;
  /** Fee bumps, newest last; the newest is the one that counts. */
  bumps: Bump[];
}

interface Common {
  id: string;
  terms: StoredTerms;
  /** Our key's index on the channel key chain. */
  keyIndex: number;
  /** Funding confirmations before payments count: at least 1, as the funding signals RBF. */
  confirmations: number;
  /** Payments stop, and the payee closes, once the tip is this many blocks from the expiry. */
  closeMargin: number;
  /** The other side's static peer key, hex. */
  peerKey: string;
  created: string;
}

export type PayerFields = { role: 'payer'; peer: PeerAddress };
export type PayeeFields = { role: 'payee' };

export type Opening = {
  status: 'opening';
  funding: Funding;
  /** The signed funding transaction, hex: broadcast again to resume the open. */
  fundingTx: string;
  /** The payee's sealed open ticket: sent back with `funded` to finish the open, even much later. */
  ticket: string;
};
export type Open = { status: 'open'; funding: Funding };
/** Past the close margin with no close on the chain: no more payments; the close or the refund settles it. */
export type Expired = { status: 'expired'; funding: Funding };
export type Closing = { status: 'closing'; funding: Funding; close: SpendTx };
export type Closed = { status: 'closed'; funding: Funding; close: SpendTx };
export type Refunding = { status: 'refunding'; funding: Funding; refund: SpendTx };
export type Refunded = { status: 'refunded'; funding: Funding; refund: SpendTx };
/** The channel never held coins: the payee or the node refused it, or its funding never confirmed before the expiry. */
export type Failed = { status: 'failed'; funding: Funding; reason: string };

export type PayerState = Opening | Open | Expired | Closing | Closed | Refunding | Refunded | Failed;
export type PayeeState = Open | Expired | Closing | Closed | Refunding | Refunded | Failed;
export type Status = PayerState['status'];

export type PayerRecord = Common & PayerFields & PayerState;
export type PayeeRecord = Common & PayeeFields & PayeeState;
export type ChannelRecord = PayerRecord | PayeeRecord;

/** Statuses after which the chain has settled the channel and nothing more will happen to it. */
export const SETTLED: ReadonlySet<Status> = new Set(['closed', 'refunded', 'failed']);

/**
 * A spend is settled at this depth: until then the close is watched (re-broadcast and
 * bumped if it leaves the mempool), since a reorganisation could still undo it.
 */
export const SETTLED_DEPTH = 6;

export function termsOf(rec: { terms: StoredTerms }): ChannelTerms {
  const t = rec.terms;
  return {
    payerPubkey: Buffer.from(t.payerPubkey, 'hex'),
    payeePubkey: Buffer.from(t.payeePubkey, 'hex'),
    expiry: t.expiry,
    capacity: BigInt(t.capacity),
    closeFee: BigInt(t.closeFee),
    payeeScript: Buffer.from(t.payeeScript, 'hex'),
    payerScript: Buffer.from(t.payerScript, 'hex'),
  };
}

export function outpointOf(rec: { funding: Funding }): Outpoint {
  // Records written before a funding was an outpoint alone carry its hex beside it.
  return { txid: rec.funding.txid, vout: rec.funding.vout };
}

/** The transaction that spends (or spent) the funding output, if the channel has one. */
export function spendOf(rec: ChannelRecord): { kind: 'close' | 'refund'; tx: SpendTx } | null {
  if (rec.status === 'closing' || rec.status === 'closed') return { kind: 'close', tx: rec.close };
  if (rec.status === 'refunding' || rec.status === 'refunded') return { kind: 'refund', tx: rec.refund };
  return null;
}

/** The fields every status shares: the record, less what its status adds, to build another status from. */
export function stateless(rec: ChannelRecord): Omit<ChannelRecord, 'status'> {
  const { status: _s, ...rest } = rec as ChannelRecord & { close?: unknown; refund?: unknown; fundingTx?: unknown; ticket?: unknown; reason?: unknown };
  delete rest.close;
  delete rest.refund;
  delete rest.fundingTx;
  delete rest.ticket;
  delete rest.reason;
  return rest;
}

type Legacy = Record<string, unknown>;

/**
 * A record as read from the keystore. The keystore is authenticated (AES-GCM under its data
 * key), so what it holds was written by swarmpay: only its shape may be an older one, and
 * the casts below say which shape it is rather than check it field by field. Keystores written before channels had typed states
 * kept `status` beside nullable `funding`, `closeTxid` and `refundTxid`: those are read into
 * the states above. A payee's unfunded opening from then is dropped (it never held coins);
 * a payer's is failed, its refund path intact.
 */
export function fromStored(v: Legacy): ChannelRecord | null {
  if ('close' in v || 'refund' in v || 'ticket' in v || 'reason' in v || 'closeMargin' in v) return v as unknown as ChannelRecord; // already typed; written by this version
  const { closeTxid, refundTxid, ...rest } = v as Legacy & { closeTxid?: string | null; refundTxid?: string | null };
  const base = { ...rest, closeMargin: LEGACY_CLOSE_MARGIN } as Legacy;
  const funding = v.funding as Funding | null;
  if (funding === null) return null;
  const spend = (txid: string): SpendTx => ({ txid, height: 0, bumps: [] });
  switch (v.status) {
    case 'opening':
      return v.role === 'payer' ? ({ ...base, status: 'failed', reason: 'left opening by an earlier swarmpay' } as unknown as ChannelRecord) : null;
    case 'closing':
      return { ...base, close: spend(closeTxid!) } as unknown as ChannelRecord;
    case 'refunded':
      // The chain says whether it confirmed: refunding until the next look.
      return { ...base, status: 'refunding', refund: spend(refundTxid!) } as unknown as ChannelRecord;
    default:
      return base as unknown as ChannelRecord;
  }
}

/** The close margin channels were opened with before it was agreed at open. */
const LEGACY_CLOSE_MARGIN = 6;
