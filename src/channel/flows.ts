/**
 * The channel operations as a user (the CLI, the demo, the bench, a program) runs them,
 * each a few protocol steps: pay a batch across channels, finish an interrupted open,
 * close by role, bump, and report what a channel is, after asking the chain.
 */
import { SwarmpayError } from '../errors.js';
import { closablePayment } from '../bitcoin/channel.js';
import type { Connector } from '../peer/connect.js';
import type { ContractContext } from '../wallet/contract-wallet.js';
import { Payee, DEFAULT_POLICY } from './payee.js';
import { PayerSession, finishOpen, payerChannel, payerConversation } from './payer.js';
import type { PayGroup, PayItem } from './batch.js';
import { readPayerLedger } from './payer-ledger.js';
import { advance, blocksLeft, lookAtChain, type FundingView } from './lifecycle.js';
import { bumpSpend } from './bump.js';
import { SETTLED, getChannel, listChannels, readPaymentState, spendOf, termsOf, updateChannel, type Bump, type ChannelRecord, type PayerRecord } from './store.js';
import type { FeeRate } from '../bitcoin/fee-rate.js';

export type SkipReason = 'already paid' | 'the payee says paid';

/** A batch id not paid this time: this payer's ledger has it paid, or only the payee says so (its word: never a reason to pay, nor to count it paid). */
export interface SkippedPayment {
  id: string;
  channel: string;
  sats: bigint;
  skipped: SkipReason;
}

/** A payment sent, and whether the payee acknowledged it. */
export interface SentPayment {
  /** The batch id, for a payment that has one. */
  id?: string;
  channel: string;
  seq: number;
  sats: bigint;
  acked: boolean;
}

export interface PayEvents {
  skipped?(e: SkippedPayment): void;
  /** Each payment as its acknowledgement arrives; those never acknowledged once the run on their channel is over. */
  payment?(e: SentPayment): void;
  acknowledged?(channel: string, done: number, of: number): void;
}

export interface PaySummary {
  payments: number;
  sent: number;
  acked: number;
  skipped: number;
  sats: bigint;
  seconds: number;
  payments_per_sec: number;
}

/** A run of payments: how far it got, and why it stopped early if it did (the counts say how far). */
export interface PayOutcome {
  summary: PaySummary;
  error?: unknown;
}

type Totals = Omit<PaySummary, 'payments_per_sec'>;

/** A run's totals with its rate: acknowledged payments per second of paying. */
export function summaryOf(t: Totals): PaySummary {
  return { ...t, payments_per_sec: t.seconds > 0 ? Math.round(t.acked / t.seconds) : 0 };
}

/**
 * Pays each group over its channel in turn: finishes the channel's open if it was cut
 * short, reconciles with the payee, skips ids this payer's ledger has paid, pays the rest
 * pipelined. Each payment is reported as its acknowledgement arrives (so a payer killed
 * mid-run has reported all the payee acknowledged), those sent and never acknowledged
 * once the run on their channel ends. Stops at the first channel that fails.
 */
export async function payGroups(ctx: ContractContext, connect: Connector, groups: readonly PayGroup[], events: PayEvents = {}): Promise<PayOutcome> {
  const total: Totals = { payments: groups.reduce((n, g) => n + g.items.length, 0), sent: 0, acked: 0, skipped: 0, sats: 0n, seconds: 0 };
  let error: unknown;
  for (const group of groups) {
    try {
      error = await payGroup(ctx, connect, group, events, total);
    } catch (e) {
      error = e;
    }
    if (error !== undefined) break;
  }
  const summary = summaryOf(total);
  return error === undefined ? { summary } : { summary, error };
}

/** Pays one group; returns why its run stopped short, if it did. */
async function payGroup(ctx: ContractContext, connect: Connector, group: PayGroup, events: PayEvents, total: Totals): Promise<unknown> {
  const rec = payerChannel(ctx, group.channel);
  const link = await connect(rec.peer, rec.peerKey);
  let session: PayerSession | null = null;
  try {
    if (rec.status === 'opening') await finishOpen(ctx, payerConversation(link), rec);
    session = await PayerSession.start(ctx, link, rec.id);
    const paid = session.ledger.paid;
    const unpaid = group.items.flatMap((i) => (i.pid === null || paid.has(i.pid) ? [] : [i.pid]));
    const theySay = unpaid.length > 0 ? await session.known(unpaid) : new Set<string>();
    const todo: PayItem[] = [];
    for (const i of group.items) {
      const why: SkipReason | null = i.pid === null ? null : paid.has(i.pid) ? 'already paid' : theySay.has(i.pid) ? 'the payee says paid' : null;
      if (i.pid === null || why === null) todo.push(i);
      else {
        total.skipped++;
        events.skipped?.({ id: i.pid, channel: rec.id, sats: i.sats, skipped: why });
      }
    }
    const base = session.paid.seq;
    const report = (k: number, acked: boolean) => {
      const { sats, pid } = todo[k];
      events.payment?.({ ...(pid === null ? {} : { id: pid }), channel: rec.id, seq: base + k + 1, sats, acked });
    };
    const r = await session.pay(todo, {
      onAck: (from, to) => {
        for (let k = from; k < to; k++) {
          total.sats += todo[k].sats;
          report(k, true);
        }
        total.acked += to - from;
        events.acknowledged?.(rec.id, to, todo.length);
      },
    });
    for (let k = r.ackedCount; k < r.sent; k++) report(k, false);
    total.sent += r.sent;
    total.seconds += r.seconds;
    return r.error;
  } finally {
    if (session) await session.disconnect();
    else await link.close();
  }
}

/** Finishes an open cut short after the funding was signed: re-broadcasts it and hands the payee its ticket. */
export async function resumeOpen(ctx: ContractContext, connect: Connector, id: string): Promise<PayerRecord> {
  const rec = payerChannel(ctx, id);
  if (rec.status !== 'opening') {
    if (rec.status === 'failed') throw new SwarmpayError('CHANNEL_STATE', `channel ${id} failed to open: ${rec.reason}`, { hint: `its funding, if it reached the chain, comes back with \`swarmpay channel refund ${id}\` from height ${rec.terms.expiry}` });
    return rec; // already open (or further): nothing to finish
  }
  const link = await connect(rec.peer, rec.peerKey);
  try {
    return await finishOpen(ctx, payerConversation(link), rec);
  } finally {
    await link.close();
  }
}

/**
 * Closes a channel: the payee broadcasts its newest state (through `serving`, the payee this
 * process runs, if any: it holds the payments journal); the payer asks the payee to.
 */
export async function closeChannel(ctx: ContractContext, connect: Connector, id: string, log: (msg: string) => void, serving: Payee | null = null): Promise<string> {
  const rec = getChannel(ctx.session, id);
  if (rec.role === 'payee') {
    if (serving !== null) return serving.closeChannel(id);
    const payee = new Payee({ ...ctx, policy: DEFAULT_POLICY, log });
    try {
      return await payee.closeChannel(id);
    } finally {
      await payee.shutdown();
    }
  }
  if (rec.status === 'closing' || rec.status === 'closed') return rec.close.txid;
  const link = await connect(rec.peer, rec.peerKey);
  let session: PayerSession | null = null;
  try {
    session = await PayerSession.start(ctx, link, id);
    return await session.close();
  } finally {
    if (session) await session.disconnect();
    else await link.close();
  }
}

/** Bumps a channel's pending close or refund to `feeRate` (sat/vB, with its child) by CPFP from this wallet's outputs in it. */
export async function bumpChannel(ctx: ContractContext, id: string, feeRate: FeeRate): Promise<Bump> {
  return bumpSpend(ctx, await refreshChannel(ctx, getChannel(ctx.session, id), await ctx.chain.tipHeight()), feeRate);
}

/** Moves a channel to the status the chain shows (storing it if it moved); returns the record as it now stands. */
export async function refreshChannel(ctx: ContractContext, rec: ChannelRecord, tip: number, seen?: FundingView): Promise<ChannelRecord> {
  if (SETTLED.has(rec.status)) return rec;
  const view = seen ?? (await lookAtChain(ctx.chain, ctx.network, rec));
  const closable = rec.role === 'payee' && readPaymentState(ctx.session, ctx.networkDir, rec.id).cumulative >= closablePayment(termsOf(rec));
  if (advance(rec, tip, view, closable) === null) return rec;
  return updateChannel(ctx.session, rec.id, (r) => advance(r, tip, view, closable), false);
}

/** What a person (or a script) needs to know of a channel; a field is absent where it does not apply, never null. */
export interface ChannelReport {
  id: string;
  role: 'payer' | 'payee';
  status: ChannelRecord['status'];
  capacity: bigint;
  /** Acknowledged (payer) or durably held (payee). */
  paid: bigint;
  /** Payer: the highest amount it may have signed (acknowledged or not): what may be spent. */
  signed?: bigint;
  /** What may still be paid: capacity less what may have been signed. */
  remaining: bigint;
  closeFee: bigint;
  expiry: number;
  /** Blocks from the tip to the expiry (negative once past it). */
  expiresIn: number;
  closeMargin: number;
  fundingTxid: string;
  fundingConfirmations?: number;
  confirmationsWanted: number;
  closeTxid?: string;
  refundTxid?: string;
  spendConfirmations?: number;
  bumps?: Bump[];
  reason?: string;
  peer?: string;
  peerKey: string;
}

/** Every channel of this datadir, each moved to what the chain shows first. */
export async function channelReports(ctx: ContractContext, ids?: string[]): Promise<ChannelReport[]> {
  const tip = await ctx.chain.tipHeight();
  const recs = ids === undefined ? listChannels(ctx.session) : ids.map((id) => getChannel(ctx.session, id));
  const out: ChannelReport[] = [];
  for (const rec of recs) {
    const seen = SETTLED.has(rec.status) ? null : await lookAtChain(ctx.chain, ctx.network, rec);
    out.push(report(ctx, await refreshChannel(ctx, rec, tip, seen ?? undefined), tip, seen));
  }
  return out;
}

function report(ctx: ContractContext, rec: ChannelRecord, tip: number, seen: FundingView | null): ChannelReport {
  const capacity = BigInt(rec.terms.capacity);
  let paid: bigint;
  let signed: bigint | undefined;
  if (rec.role === 'payee') {
    paid = readPaymentState(ctx.session, ctx.networkDir, rec.id).cumulative;
  } else {
    const l = readPayerLedger(ctx.session, ctx.networkDir, rec.id);
    paid = l.acked.cumulative;
    signed = l.signed.cumulative;
  }
  const spend = spendOf(rec);
  const r: ChannelReport = {
    id: rec.id,
    role: rec.role,
    status: rec.status,
    capacity,
    paid,
    remaining: capacity - (signed ?? paid),
    closeFee: BigInt(rec.terms.closeFee),
    expiry: rec.terms.expiry,
    expiresIn: blocksLeft(rec, tip),
    closeMargin: rec.closeMargin,
    fundingTxid: rec.funding.txid,
    confirmationsWanted: rec.confirmations,
    peerKey: rec.peerKey,
  };
  if (signed !== undefined) r.signed = signed;
  if (seen?.confirmations !== null && seen?.confirmations !== undefined) r.fundingConfirmations = seen.confirmations;
  if (spend !== null) {
    if (spend.kind === 'close') r.closeTxid = spend.tx.txid;
    else r.refundTxid = spend.tx.txid;
    if (seen?.spend) r.spendConfirmations = seen.spend.confirmations;
    if (spend.tx.bumps.length > 0) r.bumps = spend.tx.bumps;
  }
  if (rec.status === 'failed') r.reason = rec.reason;
  if (rec.role === 'payer') r.peer = rec.peer.kind === 'tcp' ? `${rec.peer.host}:${rec.peer.port}` : rec.peer.command;
  return r;
}
