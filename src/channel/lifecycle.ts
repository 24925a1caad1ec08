/**
 * The channel's state machine over the chain, the same on both sides: what the chain
 * shows of the funding output (its confirmations, and the close or refund that spends
 * it) moves a channel from status to status, and decides whether it may carry a payment.
 * The transitions are pure functions of a record and what was seen; `lookAtChain` is the
 * one place that asks the node.
 */
import { SwarmpayError } from '../errors.js';
import { channelOutput, spendKind } from '../bitcoin/channel.js';
import type { ChainBackend } from '../chain/backend.js';
import type { NetworkName } from '../bitcoin/network.js';
import { SETTLED, SETTLED_DEPTH, outpointOf, termsOf, withState, type ChannelRecord, type Funding, type SpendTx, type StoredTerms } from './record.js';

/** What the node shows of a channel's funding output. */
export interface FundingView {
  /** The funding transaction's confirmations, 0 in the mempool; null when the node does not know it (never broadcast, replaced or dropped). */
  confirmations: number | null;
  /** The transaction spending the output, mempool included. */
  spend: { kind: 'close' | 'refund'; txid: string; confirmations: number } | null;
}

/**
 * What the node shows of a channel's funding output, asked as cheaply as it can be: while
 * the output is unspent, its confirmations (one short answer), and the spend this channel
 * already knows (its close or refund) by its txid; only once the output is gone (or with
 * `mempool`) the search for what spent it. On btcd a spend still in the mempool shows only
 * with `mempool`: before the expiry only the payee's own close can be one (which it knows),
 * and after the expiry the expiry refuses payments anyway; the chain shows it once mined.
 */
export async function lookAtChain(chain: ChainBackend, network: NetworkName, rec: { terms: StoredTerms; funding: Funding } & Partial<Pick<ChannelRecord & { close: SpendTx; refund: SpendTx }, 'close' | 'refund'>>, opts: { mempool?: boolean } = {}): Promise<FundingView> {
  const funding = outpointOf(rec);
  const out = opts.mempool ? null : await chain.txOut(funding);
  if (out !== null) {
    const known = rec.close ? { kind: 'close' as const, txid: rec.close.txid } : rec.refund ? { kind: 'refund' as const, txid: rec.refund.txid } : null;
    const tx = known === null ? null : await chain.getTransaction(known.txid);
    return { confirmations: out.confirmations, spend: known === null || tx === null ? null : { ...known, confirmations: tx.confirmations } };
  }
  const [tx, spend] = await Promise.all([chain.getTransaction(funding.txid), chain.findSpend(funding, channelOutput(termsOf(rec), network).address)]);
  const kind = spend === null ? null : spendKind(spend.witness);
  return {
    confirmations: tx === null ? null : tx.confirmations,
    // A witness of any other shape cannot spend this script, so the node never shows one.
    spend: spend === null || kind === null ? null : { kind, txid: spend.txid, confirmations: spend.confirmations },
  };
}

/** Blocks from the tip to the expiry; at or below the close margin, payments stop. */
export function blocksLeft(rec: { terms: StoredTerms }, tip: number): number {
  return rec.terms.expiry - tip;
}

/**
 * The status the chain says a channel is in, or null if it stays where it is. `closable`
 * (the payee's: it holds a state worth closing on) keeps an open channel past its margin
 * open until the payee's close is out; a payer's channel past the margin is expired.
 */
export function advance(rec: ChannelRecord, tip: number, seen: FundingView, closable = false): ChannelRecord | null {
  if (SETTLED.has(rec.status)) return null;
  const s = seen.spend;
  if (s !== null) {
    const settled = s.confirmations >= SETTLED_DEPTH;
    const known = rec.status === 'closing' || rec.status === 'closed' ? rec.close : rec.status === 'refunding' || rec.status === 'refunded' ? rec.refund : null;
    // Bumps belong to the spend they bumped: a different spend starts with none.
    const tx: SpendTx = known !== null && known.txid === s.txid ? known : { txid: s.txid, height: tip, bumps: [] };
    const status = s.kind === 'close' ? (settled ? 'closed' : 'closing') : settled ? 'refunded' : 'refunding';
    if (status === rec.status && tx === known) return null;
    if (s.kind === 'close') return withState(rec, { status: settled ? 'closed' : 'closing', close: tx });
    return withState(rec, { status: settled ? 'refunded' : 'refunding', refund: tx });
  }
  // A funding the node does not know by the expiry never will hold coins this channel can
  // pay out (the payer replaced or dropped it): settled, so nobody watches it any more.
  if (seen.confirmations === null && tip >= rec.terms.expiry) {
    return withState(rec, { status: 'failed', reason: `its funding ${rec.funding.txid} never confirmed, and the channel is past its expiry` });
  }
  if (rec.status === 'open' && blocksLeft(rec, tip) <= rec.closeMargin && (rec.role === 'payer' || !closable)) {
    return withState(rec, { status: 'expired' });
  }
  return null;
}

/**
 * Why a channel may not carry a payment now, or null if it may: it must be open, its
 * funding confirmed as agreed and unspent, and the tip more than the close margin before
 * the expiry, so that the payee's close confirms before the payer can refund. Both sides
 * ask this: the payee before it acknowledges, the payer before it signs.
 */
export function refusal(rec: ChannelRecord, tip: number, seen: FundingView): SwarmpayError | null {
  if (seen.spend !== null) {
    return new SwarmpayError('CHANNEL_SPENT', `the funding of channel ${rec.id} is spent by ${seen.spend.kind === 'close' ? 'a close' : 'the payer\'s refund'} (${seen.spend.txid})`, {
      hint: 'nothing more can be paid on this channel; see `swarmpay channel show`',
      details: { spendTxid: seen.spend.txid, kind: seen.spend.kind },
    });
  }
  if (rec.status !== 'open') return notOpen(rec);
  if (seen.confirmations === null) {
    return new SwarmpayError('CHANNEL_STATE', `the node does not know the funding transaction of channel ${rec.id} (${rec.funding.txid})`, {
      hint: 'it may have been replaced or dropped; the payer can re-broadcast it with `swarmpay channel open --resume`',
    });
  }
  if (seen.confirmations < rec.confirmations) {
    return new SwarmpayError('CHANNEL_STATE', `the funding of channel ${rec.id} has ${seen.confirmations} of ${rec.confirmations} confirmations`, {
      hint: 'wait for the funding transaction to confirm (channel open --wait), then pay',
      details: { confirmations: seen.confirmations, wanted: rec.confirmations },
    });
  }
  const left = blocksLeft(rec, tip);
  if (left <= rec.closeMargin) {
    return new SwarmpayError('CHANNEL_EXPIRING', `channel ${rec.id} expires at height ${rec.terms.expiry}, ${left} blocks from the tip (${tip}), within its close margin of ${rec.closeMargin}`, {
      hint: 'payments stopped so that the payee\'s close confirms before the payer can refund; open a new channel',
      details: { expiry: rec.terms.expiry, tip, closeMargin: rec.closeMargin },
    });
  }
  return null;
}

/** Why a channel that is not open takes no payment, and what its owner can do instead. */
export function notOpen(rec: ChannelRecord): SwarmpayError {
  return new SwarmpayError('CHANNEL_STATE', `channel ${rec.id} is ${rec.status}`, { hint: statusHint(rec), details: { status: rec.status } });
}

function statusHint(rec: ChannelRecord): string {
  switch (rec.status) {
    case 'opening':
      return `finish the open first: \`swarmpay channel open --resume ${rec.id}\``;
    case 'failed':
      return rec.reason;
    case 'expired':
      return rec.role === 'payer' ? `wait for the payee's close, or refund from height ${rec.terms.expiry}: \`swarmpay channel refund ${rec.id}\`` : 'nothing was paid that a close could pay out; the payer refunds it after the expiry';
    default:
      return 'open a new channel';
  }
}
