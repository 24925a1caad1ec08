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
import { SwarmpayError } from '../errors.js';
import type { ChannelTerms } from '../bitcoin/channel.js';
import type { Outpoint } from '../bitcoin/outpoint.js';
import type { PeerAddress } from '../peer/connect.js';
import { ShapeError, asObj, hex, int, obj, str, type Obj } from '../util/shape.js';
import { MAX_FEE_RATE, MIN_RELAY_FEE_RATE, parseFeeRate } from '../bitcoin/policy.js';


/** The terms as stored: amounts as decimal strings, keys and scripts as hex. */
export type StoredTerms = {
  payerPubkey: string;
  payeePubkey: string;
  expiry: number;
  capacity: string;
  closeFee: string;
  payeeScript: string;
  payerScript: string;
};

/** The funding output: an Outpoint, as a type a JSON record can hold. (Only an opening payer keeps the funding transaction itself, to broadcast it again.) */
export type Funding = { txid: string; vout: number };

/** A CPFP child that raised a pending close's (or refund's) fee. */
export type Bump = {
  txid: string;
  /** The package fee rate it was built for, sat/vB in decimal ("2", "2.5"; earlier versions wrote whole ones). */
  feeRate: string;
  fee: string;
  vsize: number;
  /** The tip when it was broadcast. */
  height: number;
};

/** A transaction spending the funding output: the close (both keys) or the payer's refund. */
export type SpendTx = {
  txid: string;
  /** The tip when this wallet broadcast it or first saw it. */
  height: number;
  /** Fee bumps, newest last; the newest is the one that counts. */
  bumps: Bump[];
};

type Common = {
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
};

type PayerFields = { role: 'payer'; peer: PeerAddress };
type PayeeFields = { role: 'payee' };

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
  // The funding alone, whatever else an object of that shape carries beside it.
  return { txid: rec.funding.txid, vout: rec.funding.vout };
}

/** The transaction that spends (or spent) the funding output, if the channel has one. */
export function spendOf(rec: ChannelRecord): { kind: 'close' | 'refund'; tx: SpendTx } | null {
  if (rec.status === 'closing' || rec.status === 'closed') return { kind: 'close', tx: rec.close };
  if (rec.status === 'refunding' || rec.status === 'refunded') return { kind: 'refund', tx: rec.refund };
  return null;
}

/** A state a channel moves to: every status but `opening` (nothing moves back to it), its funding kept. */
export type NextState = WithoutFunding<PayeeState>;

/** Omit distributed over a union, so each status keeps its own fields. */
type WithoutFunding<S> = S extends unknown ? Omit<S, 'funding'> : never;

/** The record in another status: its terms, keys and peer as they are, the fields of the old status gone. */
export function withState(rec: PayerRecord, next: NextState): PayerRecord;
export function withState(rec: ChannelRecord, next: NextState): ChannelRecord;
export function withState(rec: ChannelRecord, next: NextState): ChannelRecord {
  const common: Common = { id: rec.id, terms: rec.terms, keyIndex: rec.keyIndex, confirmations: rec.confirmations, closeMargin: rec.closeMargin, peerKey: rec.peerKey, created: rec.created };
  const state = { ...next, funding: rec.funding };
  return rec.role === 'payer' ? { ...common, role: 'payer', peer: rec.peer, ...state } : { ...common, role: 'payee', ...state };
}

/** A decimal amount in sats, as stored. */
function sats(o: Obj, k: string, where: string): string {
  const v = str(o, k, where);
  if (!/^(0|[1-9][0-9]{0,15})$/.test(v)) throw new ShapeError(`${where}.${k} must be an amount in sats`);
  return v;
}

/** A fee rate in sat/vB, as stored: whole (as every earlier version wrote it) or up to 3 decimals. */
/** A rate this wallet bumped at: within the policy's bounds, as every rate it signs at is (a stored 0 would stall the next bump's climb). */
function feeRate(o: Obj, k: string, where: string): string {
  const v = str(o, k, where);
  try {
    parseFeeRate(v);
  } catch {
    throw new ShapeError(`${where}.${k} must be a fee rate in sat/vB from ${MIN_RELAY_FEE_RATE} to ${MAX_FEE_RATE}`);
  }
  return v;
}

function list<T>(o: Obj, k: string, where: string, item: (v: unknown, where: string) => T): T[] {
  const v = o[k];
  if (!Array.isArray(v)) throw new ShapeError(`${where}.${k} must be a list`);
  return v.map((x: unknown, i) => item(x, `${where}.${k}[${i}]`));
}

function terms(o: Obj, w: string): StoredTerms {
  return {
    payerPubkey: hex(o, 'payerPubkey', w, 33),
    payeePubkey: hex(o, 'payeePubkey', w, 33),
    expiry: int(o, 'expiry', w),
    capacity: sats(o, 'capacity', w),
    closeFee: sats(o, 'closeFee', w),
    payeeScript: hex(o, 'payeeScript', w),
    payerScript: hex(o, 'payerScript', w),
  };
}

/** Terms as stored (in a record, or in the payee's sealed ticket); a bad field throws ShapeError naming it. */
export function decodeTerms(v: unknown, where: string): StoredTerms {
  return terms(asObj(v, where), where);
}

function bump(v: unknown, w: string): Bump {
  const o = asObj(v, w);
  return { txid: hex(o, 'txid', w, 32), feeRate: feeRate(o, 'feeRate', w), fee: sats(o, 'fee', w), vsize: int(o, 'vsize', w), height: int(o, 'height', w) };
}

function spendTx(o: Obj, k: string, where: string): SpendTx {
  const s = obj(o, k, where);
  const w = `${where}.${k}`;
  return { txid: hex(s, 'txid', w, 32), height: int(s, 'height', w), bumps: list(s, 'bumps', w, bump) };
}

function peer(o: Obj, where: string): PeerAddress {
  const p = obj(o, 'peer', where);
  const w = `${where}.peer`;
  const kind = str(p, 'kind', w);
  if (kind === 'tcp') return { kind, host: str(p, 'host', w), port: int(p, 'port', w, 1, 65_535) };
  if (kind === 'cmd') return { kind, command: str(p, 'command', w) };
  throw new ShapeError(`${w}.kind must be "tcp" or "cmd"`);
}

function state(o: Obj, w: string): PayerState {
  const f = obj(o, 'funding', w);
  const funding: Funding = { txid: hex(f, 'txid', `${w}.funding`, 32), vout: int(f, 'vout', `${w}.funding`) };
  const status = str(o, 'status', w);
  switch (status) {
    case 'opening':
      // Records of a few early versions kept the funding transaction inside `funding`, as `tx`.
      return { status, funding, fundingTx: o.fundingTx === undefined && f.tx !== undefined ? hex(f, 'tx', `${w}.funding`) : hex(o, 'fundingTx', w), ticket: hex(o, 'ticket', w) };
    case 'open':
    case 'expired':
      return { status, funding };
    case 'closing':
    case 'closed':
      return { status, funding, close: spendTx(o, 'close', w) };
    case 'refunding':
    case 'refunded':
      return { status, funding, refund: spendTx(o, 'refund', w) };
    case 'failed':
      return { status, funding, reason: str(o, 'reason', w) };
    default:
      throw new ShapeError(`${w}.status "${status.slice(0, 32)}" is not a channel status`);
  }
}

function typed(o: Obj, w: string): ChannelRecord {
  const common: Common = {
    id: hex(o, 'id', w, 8),
    terms: terms(obj(o, 'terms', w), `${w}.terms`),
    keyIndex: int(o, 'keyIndex', w),
    confirmations: int(o, 'confirmations', w),
    closeMargin: int(o, 'closeMargin', w),
    peerKey: hex(o, 'peerKey', w, 32),
    created: str(o, 'created', w),
  };
  const role = str(o, 'role', w);
  const s = state(o, w);
  if (role === 'payer') return { ...common, role, peer: peer(o, w), ...s };
  if (role !== 'payee') throw new ShapeError(`${w}.role must be "payer" or "payee"`);
  if (s.status === 'opening') throw new ShapeError(`${w}.status: a payee stores no opening channel`);
  return { ...common, role, ...s };
}

/**
 * Keystores written before channels had typed states kept `status` beside nullable
 * `funding`, `closeTxid` and `refundTxid`, and no close margin: the record in today's shape,
 * or null for one that never held coins. A payee's unfunded opening is dropped; a payer's
 * is failed, its refund path intact.
 */
function migrate(o: Obj, w: string): Obj | null {
  // Typed states came a little before the agreed margin: those only lack the margin.
  if ('close' in o || 'refund' in o || 'ticket' in o || 'reason' in o) return { ...o, closeMargin: LEGACY_CLOSE_MARGIN };
  if (o.funding === null) return null;
  const { closeTxid: _c, refundTxid: _r, ...rest } = o;
  const base: Obj = { ...rest, closeMargin: LEGACY_CLOSE_MARGIN };
  const spend = (k: string) => ({ txid: hex(o, k, w, 32), height: 0, bumps: [] });
  switch (o.status) {
    case 'opening':
      return o.role === 'payer' ? { ...base, status: 'failed', reason: 'left opening by an earlier swarmpay' } : null;
    case 'closing':
    case 'closed':
      return { ...base, close: spend('closeTxid') };
    case 'refunding':
    case 'refunded':
      // The chain says whether it confirmed: refunding until the next look.
      return { ...base, status: 'refunding', refund: spend('refundTxid') };
    default:
      return base;
  }
}

/** The close margin channels were opened with before it was agreed at open. */
const LEGACY_CLOSE_MARGIN = 6;

/**
 * A record as read from the keystore, checked field by field: the keystore is
 * authenticated, so a bad shape means a bug or a foreign writer, and is refused
 * (KEYSTORE_CORRUPT, naming the field) before anything acts on it. A record of an older
 * shape is read as today's; null for one that never held coins.
 */
export function decodeRecord(v: unknown, key: string): ChannelRecord | null {
  const w = `channel ${key.slice(0, 32)}`;
  try {
    const o = asObj(v, w);
    // Only legacy records lack the close margin: every typed one is written with it.
    const current = 'closeMargin' in o ? o : migrate(o, w);
    return current === null ? null : typed(current, w);
  } catch (e) {
    if (!(e instanceof ShapeError)) throw e;
    throw new SwarmpayError('KEYSTORE_CORRUPT', `the keystore's record of ${e.message}`, { hint: 'this swarmpay cannot read it; nothing was changed', details: { channel: key } });
  }
}
