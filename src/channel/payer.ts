/**
 * The payer: opens a channel (agrees terms with the payee, funds the output from the
 * wallet, hands the payee its ticket back), then pays by signing ever-larger close states
 * and sending them pipelined, without waiting for each acknowledgement; refunds the whole
 * output after the expiry. What it has signed and what is paid it keeps in its own ledger
 * (payer-ledger.ts), never on the payee's word; before it signs anything it checks the
 * channel against the chain itself.
 */
import { SwarmpayError } from '../errors.js';
import { checkFeeRate, payoutType } from '../bitcoin/policy.js';
import { StateHasher, channelOutput, closeVbytes, refundTx, signState, verifyState, type ChannelTerms } from '../bitcoin/channel.js';
import { broadcastOnce } from '../chain/broadcast.js';
import type { PeerLink } from '../peer/link.js';
import type { PeerAddress } from '../peer/connect.js';
import type { ContractContext } from '../wallet/contract-wallet.js';
import { MAX_TX_BYTES, MAX_UNCOVERED, channelConversation, type ChannelConversation } from './messages.js';
import { PaymentsWriter } from './payments-codec.js';
import { MIN_SETTLE_FEE_RATE, settleFeeRate } from '../chain/fees.js';
import { advance, lookAtChain, notOpen, refusal } from './lifecycle.js';
import { PayerJournal, type PayerLedger } from './payer-ledger.js';
import { getChannel, newChannelId, nextKeyIndex, outpointOf, saveChannels, spendOf, termsOf, updateChannel, withState, type Opening, type PayerRecord, type PaymentState } from './store.js';
import type { FeeRate } from '../bitcoin/fee-rate.js';

import { MAX_EXPIRY_BLOCKS, MIN_EXPIRY_BLOCKS } from './defaults.js';

export { DEFAULT_EXPIRY_BLOCKS, MAX_EXPIRY_BLOCKS, MIN_EXPIRY_BLOCKS } from './defaults.js';

/**
 * How long the payer waits for the next acknowledgement while payments are out. The payee
 * acknowledges each signed state once it is durable (one fsync, within a turn of its event
 * loop), so while acks keep coming a stream of any length goes on; a payee silent this long
 * is gone or stuck.
 */
const ACK_TIMEOUT_MS = 60_000;

/** Payments sent between two turns of the event loop, so acknowledgements get in. */
export const SEND_YIELD_EVERY = 256;
/** Payments reserved in the ledger with one fsync before any of them is signed: two windows. */
const RESERVE_EVERY = 2 * MAX_UNCOVERED;

/** Said when the payee hangs up or falls silent. */
const PAYEE_GONE = 'see the payee\'s log; nothing was paid that was not acknowledged';

/** The payer's side of the channel protocol over `link`: each step waits for its answer as long as DEFAULT_STEP_TIMEOUT_MS. */
export function payerConversation(link: PeerLink): ChannelConversation {
  return channelConversation(link, { hint: PAYEE_GONE });
}

/** A channel this wallet pays. */
export function payerChannel(ctx: ContractContext, id: string): PayerRecord {
  const rec = getChannel(ctx.session, id);
  if (rec.role !== 'payer') throw new SwarmpayError('CHANNEL_STATE', `channel ${id} pays this wallet; only its payer pays, refunds or resumes it`, { hint: 'as the payee, `swarmpay channel close` closes it' });
  return rec;
}

export interface OpenResult {
  rec: PayerRecord;
  fundingTxid: string;
  fee: bigint;
}

export async function openChannel(ctx: ContractContext, link: PeerLink, peer: PeerAddress, opts: { capacity: bigint; expiryBlocks: number; feeRate: FeeRate }): Promise<OpenResult> {
  const [opened] = await openChannels(ctx, [{ link, peer, capacity: opts.capacity, expiryBlocks: opts.expiryBlocks }], opts.feeRate);
  // One spec in, one result out: openChannels answers each spec or throws.
  if (opened === undefined) throw new SwarmpayError('INTERNAL', 'an open of one channel opened none');
  return opened;
}

/** One channel of a batch open: over its own link to its payee. */
export interface OpenSpec {
  link: PeerLink;
  peer: PeerAddress;
  capacity: bigint;
  expiryBlocks: number;
}

/** What opening channels commits the wallet to: asked once the funding is built, before anything is stored or broadcast. */
export interface OpenConsent {
  /** Each channel, in the order asked for: its capacity locked until `expiry` (a height, `expiryBlocks` from now) or paid to the payee of that key. */
  channels: { capacity: bigint; payeeKey: string; expiry: number; expiryBlocks: number }[];
  /** The funding's fee, paid once for all of them, and its rate in sat/vB. */
  fee: bigint;
  feeRate: FeeRate;
}

/**
 * Opens channels, each agreed over its own link, all funded by one transaction (output i
 * funds channel i): many channels for one fee and one wallet scan. Every channel is stored
 * before the funding is broadcast. With `confirm`, asks it first (false: USAGE, nothing
 * stored nor paid). Resolves once every open is finished; if any is not, throws the first
 * failure (each channel's status says where it stands).
 */
export async function openChannels(ctx: ContractContext, specs: OpenSpec[], feeRate: FeeRate, confirm?: (c: OpenConsent) => Promise<boolean>): Promise<OpenResult[]> {
  checkFeeRate(feeRate);
  for (const { expiryBlocks: e } of specs) {
    if (!Number.isSafeInteger(e) || e < MIN_EXPIRY_BLOCKS || e > MAX_EXPIRY_BLOCKS) throw new SwarmpayError('USAGE', `an expiry ${e} blocks away: it must be ${MIN_EXPIRY_BLOCKS} to ${MAX_EXPIRY_BLOCKS} blocks`, { hint: 'nothing was funded' });
  }
  if (specs.length === 0) return [];
  const payerScript = await ctx.wallet.payoutScript();
  const tip = await ctx.chain.tipHeight();
  // The close is agreed at the node's estimate (never below the floor), for the payee's
  // P2WPKH; the payee re-checks it against its own node.
  const closeFee = (await settleFeeRate(ctx.chain, MIN_SETTLE_FEE_RATE)).feeFor(closeVbytes({ payeeScript: payerScript, payerScript }));
  const first = nextKeyIndex(ctx.session);
  const agreed = await Promise.all(specs.map((spec, i) => agree(ctx, spec, first + i, payerScript, tip + spec.expiryBlocks, closeFee)));

  // The payments come first, in order: output i funds channel i. Its coins stay locked until it is broadcast.
  return ctx.wallet.fund(agreed.map((a) => ({ address: a.address, amount: a.capacity })), feeRate, async (signed) => {
    // Each payee must take the whole funding in its `funded` message: one it would refuse is never stored nor sent.
    if (signed.hex.length / 2 > MAX_TX_BYTES) {
      throw new SwarmpayError('TX_CHECK_FAILED', `the funding of ${agreed.length} channel(s) is ${signed.hex.length / 2} bytes; a payee takes at most ${MAX_TX_BYTES}`, {
        hint: 'open fewer channels at once, or first consolidate the wallet\'s many small coins into one with `swarmpay wallet send` to itself; nothing was paid',
      });
    }
    if (confirm) {
      const channels = agreed.map((a) => ({ capacity: a.capacity, payeeKey: a.rec.peerKey, expiry: a.rec.terms.expiry, expiryBlocks: a.rec.terms.expiry - tip }));
      if (!(await confirm({ channels, fee: signed.fee, feeRate }))) throw new SwarmpayError('USAGE', 'cancelled; nothing was paid', { hint: 'no channel was stored and the funding was never broadcast' });
    }
    const opens = agreed.map((a, vout) => ({ conv: a.conv, rec: { ...a.rec, status: 'opening', funding: { txid: signed.txid, vout }, fundingTx: signed.hex, ticket: a.ticket } satisfies PayerRecord & Opening }));
    // Stored (a checkpoint) before the coins move: whatever happens next, the refund path is known.
    await saveChannels(ctx.session, opens.map((o) => o.rec), true);
    const done = await Promise.allSettled(opens.map((o) => finishOpen(ctx, o.conv, o.rec)));
    const out: OpenResult[] = [];
    for (const d of done) {
      if (d.status === 'rejected') throw d.reason;
      out.push({ rec: d.value, fundingTxid: signed.txid, fee: signed.fee });
    }
    return out;
  });
}

/** Agrees one channel's terms with its payee: the record (all but its funding), the channel's address, and the payee's ticket. */
async function agree(ctx: ContractContext, spec: OpenSpec, keyIndex: number, payerScript: Uint8Array, expiry: number, closeFee: bigint) {
  const { link, capacity, expiryBlocks } = spec;
  const conv = payerConversation(link);
  const id = newChannelId();
  const key = ctx.wallet.key('channel', keyIndex);
  conv.send({ t: 'open', id, network: ctx.network, capacity, expiry, closeFee, payerPubkey: key.pub.toString('hex'), payerScript: Buffer.from(payerScript).toString('hex') });
  const accept = await conv.expect('accept');
  if (accept.id !== id) throw new SwarmpayError('PEER_PROTOCOL', 'the payee accepted another channel');
  const payeeScript = Buffer.from(accept.payeeScript, 'hex');
  if (payoutType(payeeScript) === null) throw new SwarmpayError('CHANNEL_REFUSED', 'the payee\'s payout script is not a standard one: a close paying it would not relay', { hint: 'nothing was funded' });
  if (accept.closeMargin >= expiryBlocks) {
    throw new SwarmpayError('CHANNEL_REFUSED', `the payee stops payments ${accept.closeMargin} blocks before the expiry, which leaves this ${expiryBlocks}-block channel none`, { hint: 'open with a later --expiry; nothing was funded' });
  }
  const terms: ChannelTerms = { payerPubkey: key.pub, payeePubkey: Buffer.from(accept.payeePubkey, 'hex'), expiry, capacity, closeFee, payeeScript, payerScript };
  const address = channelOutput(terms, ctx.network).address;
  const rec: Omit<PayerRecord & Opening, 'status' | 'funding' | 'fundingTx' | 'ticket'> = {
    id,
    role: 'payer',
    peer: spec.peer,
    terms: {
      payerPubkey: key.pub.toString('hex'),
      payeePubkey: accept.payeePubkey,
      expiry,
      capacity: capacity.toString(),
      closeFee: closeFee.toString(),
      payeeScript: accept.payeeScript,
      payerScript: Buffer.from(payerScript).toString('hex'),
    },
    keyIndex,
    confirmations: accept.confirmations,
    closeMargin: accept.closeMargin,
    peerKey: link.remoteKey.toString('hex'),
    created: new Date().toISOString(),
  };
  return { rec, address, capacity, ticket: accept.ticket, conv };
}

/**
 * Finishes an open whose funding is signed and stored: broadcasts the funding (again),
 * hands the payee its ticket with the funding, and marks the channel open once the payee
 * has it. Whatever fails here leaves the channel `opening` and says how to go on.
 */
export async function finishOpen(ctx: ContractContext, conv: ChannelConversation, rec: PayerRecord & Opening): Promise<PayerRecord> {
  try {
    await broadcastOnce(ctx.chain, rec.fundingTx, rec.funding.txid);
  } catch (e) {
    if (!(e instanceof SwarmpayError && e.code === 'TX_REJECTED')) throw e;
    // The node will not take the funding and does not have it: nothing was locked.
    await fail(ctx, rec, `the node refused its funding: ${e.message}`);
    throw new SwarmpayError('TX_REJECTED', `channel ${rec.id} did not open: ${e.message}`, { hint: 'nothing was locked: the funding never reached the chain', details: e.details });
  }
  try {
    conv.send({ t: 'funded', id: rec.id, tx: rec.fundingTx, vout: rec.funding.vout, ticket: rec.ticket });
    const state = await conv.expect('state');
    if (state.id !== rec.id || state.status !== 'open') throw new SwarmpayError('PEER_PROTOCOL', `the payee did not open channel ${rec.id} (it says ${state.status})`);
  } catch (e) {
    const err = e instanceof SwarmpayError ? e : new SwarmpayError('INTERNAL', String(e));
    if (REFUSALS.has(String(err.details?.peerCode))) {
      // The payee will not take this channel: its coins come back by the refund.
      await fail(ctx, rec, `the payee refused it: ${err.message}`);
      throw new SwarmpayError(err.code, `channel ${rec.id} did not open: ${err.message}`, {
        hint: `its funding ${rec.funding.txid} comes back to this wallet with \`swarmpay channel refund ${rec.id}\` from height ${rec.terms.expiry}`,
        details: { channel: rec.id, fundingTxid: rec.funding.txid, expiry: rec.terms.expiry },
      });
    }
    throw new SwarmpayError(err.code, `channel ${rec.id} is funded (${rec.funding.txid}) but the payee has not confirmed it: ${err.message}`, {
      hint: `finish the open with \`swarmpay channel open --resume ${rec.id}\` (or just \`channel pay\`, which resumes it); the coins are safe: they come back by \`channel refund\` from height ${rec.terms.expiry} if the payee never takes the channel`,
      details: { channel: rec.id, fundingTxid: rec.funding.txid, resume: `swarmpay channel open --resume ${rec.id}` },
      cause: e,
    });
  }
  await updateChannel(ctx.session, rec.id, (r) => (r.status === 'opening' && r.role === 'payer' ? withState(r, { status: 'open' }) : null), false);
  return payerChannel(ctx, rec.id);
}

/**
 * What the payee answers to a ticket it will never take: a forged or foreign ticket, an id
 * taken, a funding that does not match, a ticket past its margin. Anything else (its node
 * or keystore busy, a dropped link) may pass: the open stays resumable.
 */
const REFUSALS: ReadonlySet<string> = new Set(['CHANNEL_REFUSED', 'CHANNEL_EXPIRING', 'FUNDING_MISMATCH']);

async function fail(ctx: ContractContext, rec: PayerRecord & Opening, reason: string): Promise<void> {
  await updateChannel(ctx.session, rec.id, (r) => (r.status === 'opening' && r.role === 'payer' ? withState(r, { status: 'failed', reason }) : null), true);
}

export interface PayResult {
  /** The newest acknowledged state: the signed state the payee durably holds. */
  acked: PaymentState;
  /** How many of the items were sent, and how many of those the payee acknowledged (the first `acked`, in order). */
  sent: number;
  ackedCount: number;
  seconds: number;
  /** Why the run stopped early (the link failed, the payee refused); the counts say how far it got. */
  error?: unknown;
}

export interface PayOptions {
  /** Hears each acknowledgement as it arrives: the items `from` to `to` - 1 (indexes into the items) are acknowledged. */
  onAck?: (from: number, to: number) => void;
  /** Each payment's time from send to acknowledgement, in ms (measured only when asked for). */
  onLatency?: (index: number, ms: number) => void;
  /** Payments per second: spaces the sends, for measuring latency below saturation. */
  pace?: number;
}

/**
 * When the payer signs. A state covers every payment before it, so signing is the cost to
 * spread: the payer signs when it has sent all it has (the end of a run, or before it waits
 * for a pace or a full window), and at most every SIGN_EVERY_MS while sending without a
 * pause, and never with more than STATES_IN_FLIGHT signed states unacknowledged. That last
 * rule makes the cadence follow the payee: a fast payee acknowledges at once and the payer
 * signs often (low latency); a busy one acknowledges late, so each state covers more
 * payments and the payee verifies fewer signatures (high throughput), as a group commit
 * batches writes.
 */
const SIGN_EVERY_MS = 1;
const STATES_IN_FLIGHT = 2;
/** The largest payments frame: a few thousand payments without ids. */
export const FRAME_BYTES = 16 * 1024;

/**
 * Where a session starts: the payee's newest state, which must carry this payer's own
 * signature and cover everything it acknowledged before; the ledger settles on it.
 */
async function reconcile(conv: ChannelConversation, id: string, journal: PayerJournal, terms: ChannelTerms, hasher: StateHasher): Promise<{ state: PaymentState; status: string }> {
  conv.send({ t: 'hello', id });
  const st = await conv.expect('state');
  if (st.id !== id) throw new SwarmpayError('PEER_PROTOCOL', 'the payee answered for another channel');
  // The payee's newest state must be one this payer signed: never take its word for an
  // amount. Only the empty state (nothing paid) carries no signature.
  const empty = st.seq === 0 && st.cumulative === 0n;
  if (!empty && (st.sig === null || !verifyState(hasher.sighash(st.cumulative), terms.payerPubkey, Buffer.from(st.sig, 'hex')))) {
    throw new SwarmpayError('PEER_PROTOCOL', `the payee claims a state (${st.cumulative} sats at sequence ${st.seq}) that this payer never signed`, { hint: 'nothing was paid; the payee is not well, or lies' });
  }
  const acked = journal.ledger.acked;
  if (st.cumulative < acked.cumulative) {
    throw new SwarmpayError('PEER_PROTOCOL', `the payee shows ${st.cumulative} sats paid, less than the ${acked.cumulative} it acknowledged: it lost acknowledged payments, or hides them`, {
      hint: 'nothing was paid; the payee can still close on what it holds, and the rest comes back to you after the expiry; tell its operator',
      details: { shown: st.cumulative.toString(), acknowledged: acked.cumulative.toString() },
    });
  }
  // Ids in states the payee holds are paid; those above what it shows are not pending any more.
  journal.settle({ seq: st.seq, cumulative: st.cumulative }, true);
  return { state: { seq: st.seq, cumulative: st.cumulative, sig: st.sig }, status: st.status };
}

/**
 * A live payer session on one channel: reconciled with the payee's newest state (which
 * must carry this payer's own signature, and cover everything it acknowledged before),
 * then payments pipelined up to PAY_WINDOW. The session holds the channel's ledger (and
 * its lock) until it disconnects.
 */
export class PayerSession {
  private state: PaymentState;
  /** What the payee said the channel is. */
  private payeeStatus: string;
  /**
   * Why a run on this session stopped short. Payments were sent that the payee may hold
   * unacknowledged: only a new session, which starts from the state the payee shows, may
   * pay on (the ledger resolves what was in flight against it).
   */
  private broken: unknown = null;
  private readonly priv: Buffer;

  private constructor(
    private readonly ctx: ContractContext,
    private readonly conv: ChannelConversation,
    readonly rec: PayerRecord,
    private readonly journal: PayerJournal,
    private readonly terms: ChannelTerms,
    private readonly hasher: StateHasher,
    shown: { state: PaymentState; status: string },
  ) {
    this.priv = ctx.wallet.key('channel', rec.keyIndex).priv;
    this.state = shown.state;
    this.payeeStatus = shown.status;
  }

  static async start(ctx: ContractContext, link: PeerLink, id: string): Promise<PayerSession> {
    const rec = payerChannel(ctx, id);
    if (rec.status === 'opening' || rec.status === 'failed') throw notOpen(rec);
    if (link.remoteKey.toString('hex') !== rec.peerKey) throw new SwarmpayError('PEER_PROTOCOL', 'the peer is not the payee of this channel (another static key)');
    const journal = PayerJournal.open(ctx.session, ctx.networkDir, id);
    try {
      const conv = payerConversation(link);
      const terms = termsOf(rec);
      const hasher = new StateHasher(terms, outpointOf(rec));
      return new PayerSession(ctx, conv, rec, journal, terms, hasher, await reconcile(conv, rec.id, journal, terms, hasher));
    } catch (e) {
      await journal.close().catch(() => undefined);
      throw e;
    }
  }

  get paid(): PaymentState {
    return this.state;
  }

  /** This payer's own record of the channel (ids paid, the highest state signed). */
  get ledger(): PayerLedger {
    return this.journal.ledger;
  }

  /** Which of these batch ids the payee says it has been paid for: its word only, never a reason to pay. */
  async known(ids: string[]): Promise<Set<string>> {
    const known = new Set<string>();
    for (let i = 0; i < ids.length; i += 1000) {
      this.conv.send({ t: 'known?', id: this.rec.id, ids: ids.slice(i, i + 1000) });
      for (const k of (await this.conv.expect('known')).ids) known.add(k);
    }
    return known;
  }

  /** Refuses, before anything is signed, a channel the payer's own look at the chain says may not be paid on. */
  private async checkPayable(): Promise<void> {
    const rec = getChannel(this.ctx.session, this.rec.id);
    const [tip, seen] = await Promise.all([this.ctx.chain.tipHeight(), lookAtChain(this.ctx.chain, this.ctx.network, this.rec)]);
    const why = refusal(rec, tip, seen);
    if (why) throw why;
    if (this.payeeStatus !== 'open') throw new SwarmpayError('CHANNEL_STATE', `the payee says channel ${this.rec.id} is ${this.payeeStatus}`, { hint: 'see `swarmpay channel show`; nothing was paid' });
  }

  /**
   * Pays each amount in turn, pipelined: payments go out in frames as fast as the window
   * lets them, covered by signed states as SIGN_EVERY_MS and STATES_IN_FLIGHT say; resolves
   * when all are acknowledged or the link fails.
   */
  async pay(items: { sats: bigint; pid: string | null }[], opts: PayOptions = {}): Promise<PayResult> {
    if (this.broken !== null) throw new SwarmpayError('CHANNEL_STATE', `an earlier run on this connection to channel ${this.rec.id} stopped short`, { hint: 'connect again: the payee shows what it holds, and paying goes on from there', cause: this.broken });
    const base = this.state;
    // Checked before anything is sent, so a run either sends all its payments or none.
    let total = base.cumulative;
    for (const i of items) {
      // A program's amount is checked as a user's is: a negative one would lower the total checked below.
      if (i.sats <= 0n) throw new SwarmpayError('INVALID_AMOUNT', `a payment of ${i.sats} sats: each payment is more than 0`, { hint: 'nothing was paid' });
      total += i.sats;
    }
    if (total > this.terms.capacity) {
      throw new SwarmpayError('CHANNEL_REFUSED', `these payments would bring the channel to ${total} sats, more than its capacity of ${this.terms.capacity} (${this.terms.capacity - base.cumulative} left)`, { hint: 'pay less, or open another channel; nothing was paid' });
    }
    await this.checkPayable();
    const start = process.hrtime.bigint();
    const { onAck, onLatency, pace } = opts;
    // A paced run may sign nothing for a pace's interval: its acks may be that much further apart.
    const ackTimeoutMs = ACK_TIMEOUT_MS + (pace === undefined ? 0 : Math.ceil(1000 / pace));
    const sentAt = onLatency ? new Float64Array(items.length) : null;
    const writer = new PaymentsWriter(FRAME_BYTES);
    // Amounts as numbers on the way out: every amount in sats is exact in a double.
    let seq = base.seq;
    let cumulative = Number(base.cumulative);
    let signedSeq = base.seq;
    let lastSign = performance.now();
    /** Signed states sent and not yet acknowledged, oldest first (at most STATES_IN_FLIGHT). */
    const inFlight: PaymentState[] = [];
    let acked = base.seq;
    let newest = base;
    let failure: unknown = null;
    let waiter: (() => void) | null = null;
    const wake = () => {
      const w = waiter;
      waiter = null;
      w?.();
    };
    const wait = () => new Promise<void>((r) => (waiter = r));
    /** Waiting for a pace: the sender is idle, so the reader may sign what is unsigned. */
    let pausing = false;
    // Payments go out as binary frames beside the conversation's messages (payments-codec.ts).
    const link = this.conv.link;
    const flush = () => {
      if (!writer.empty) link.send(writer.take());
    };
    const sign = () => {
      const sig = signState(this.hasher.sighash(BigInt(cumulative)), this.priv);
      writer.state(seq + 1, seq, cumulative, sig);
      inFlight.push({ seq, cumulative: BigInt(cumulative), sig: sig.toString('hex') });
      signedSeq = seq;
      lastSign = performance.now();
    };
    /** Signs what is unsigned if the payee is not behind, and sends what is built. */
    const signAndSend = () => {
      if (signedSeq < seq && inFlight.length < STATES_IN_FLIGHT) sign();
      flush();
    };
    const reader = (async () => {
      try {
        while (acked < base.seq + items.length) {
          const ack = await this.conv.expect('ack', ackTimeoutMs);
          // Acks are cumulative, and only ever for a state this payer signed and sent.
          const i = inFlight.findIndex((st) => st.seq === ack.seq);
          if (i < 0) throw new SwarmpayError('PEER_PROTOCOL', `the payee acknowledged sequence ${ack.seq}, which no signed state in flight ends at (${acked} acknowledged, ${signedSeq} signed)`);
          newest = inFlight[i];
          inFlight.splice(0, i + 1);
          if (sentAt && onLatency) {
            const now = performance.now();
            for (let s = acked + 1; s <= ack.seq; s++) onLatency(s - base.seq - 1, now - sentAt[s - base.seq - 1]);
          }
          onAck?.(acked - base.seq, ack.seq - base.seq);
          acked = ack.seq;
          // Payments left unsigned for a full window are signed as soon as there is room.
          if (pausing) signAndSend();
          wake();
        }
      } catch (e) {
        failure = e;
        wake();
      }
    })();

    let reserved = 0;
    try {
      for (let i = 0; i < items.length && failure === null; i++) {
        if (i === reserved) reserved = this.reserve(items, i, base.seq, BigInt(cumulative));
        if (pace !== undefined) {
          const due = start + BigInt(Math.floor((i / pace) * 1e9));
          const ahead = Number(due - process.hrtime.bigint()) / 1e6;
          // Nothing else is ready until then: the queue has drained, so what waits is signed now.
          if (ahead > 0) {
            signAndSend();
            pausing = true;
            await new Promise((r) => setTimeout(r, ahead));
            pausing = false;
          }
        }
        const item = items[i];
        const sats = Number(item.sats);
        seq++;
        cumulative += sats;
        writer.payment(seq, sats, item.pid);
        if (sentAt) sentAt[i] = performance.now();
        if (!writer.roomy) flush();
        while (seq - acked >= MAX_UNCOVERED && failure === null) {
          signAndSend();
          await wait();
        }
        if (i % SEND_YIELD_EVERY === SEND_YIELD_EVERY - 1) {
          if (performance.now() - lastSign >= SIGN_EVERY_MS) signAndSend();
          else flush();
          await new Promise((r) => setImmediate(r));
        }
      }
      // The last state: signed as soon as the payee is not behind.
      while (signedSeq < seq && failure === null) {
        signAndSend();
        if (signedSeq < seq) await wait();
      }
      flush();
    } catch (e) {
      // A send on a link that just failed: the reader has (or will have) the reason.
      failure ??= e;
    }
    const sent = seq - base.seq;
    while (acked < seq && failure === null) await wait();
    if (failure === null) await reader;
    this.state = newest;
    this.journal.settle({ seq: newest.seq, cumulative: newest.cumulative }, false);
    const result: PayResult = { acked: newest, sent, ackedCount: acked - base.seq, seconds: Number(process.hrtime.bigint() - start) / 1e9 };
    if (failure !== null) {
      result.error = failure;
      this.broken = failure;
    }
    return result;
  }

  /**
   * Records in the ledger, with one fsync, the stretch of payments from `from` about to be
   * signed: the highest state it reaches, and where each batch id in it is covered. Returns
   * where the stretch ends.
   */
  private reserve(items: { sats: bigint; pid: string | null }[], from: number, baseSeq: number, cumulative: bigint): number {
    const end = Math.min(items.length, from + RESERVE_EVERY);
    const pids: [string, bigint][] = [];
    let c = cumulative;
    for (let i = from; i < end; i++) {
      c += items[i].sats;
      const pid = items[i].pid;
      if (pid !== null) pids.push([pid, c]);
    }
    this.journal.reserve({ seq: baseSeq + end, cumulative: c }, pids);
    return end;
  }

  /** Ends the connection and lets go of the ledger (the channel stays as it is). */
  async disconnect(): Promise<void> {
    try {
      await this.journal.close();
    } finally {
      await this.conv.close();
    }
  }

  /**
   * Asks the payee to close cooperatively; returns the close txid once the node shows a
   * transaction by that id spending this channel (the payee's word alone moves nothing).
   */
  async close(): Promise<string> {
    this.conv.send({ t: 'close', id: this.rec.id });
    const m = await this.conv.expect('closed');
    const tx = await this.ctx.chain.getTransaction(m.txid);
    const funding = outpointOf(this.rec);
    if (tx === null || !tx.inputs.some((i) => i.txid === funding.txid && i.vout === funding.vout)) {
      throw new SwarmpayError('PEER_PROTOCOL', `the payee says it closed with ${m.txid}, which the node does not show spending this channel`, { hint: 'ask again later, or wait: the payee must close before the expiry, or you refund' });
    }
    const tip = await this.ctx.chain.tipHeight();
    await updateChannel(this.ctx.session, this.rec.id, (r) => (r.status === 'open' || r.status === 'expired' ? { ...r, status: 'closing', close: { txid: m.txid, height: tip, bumps: [] } } : null), true);
    return m.txid;
  }
}

/** Spends the whole channel output back to the wallet once the expiry height is reached. */
export async function refundChannel(ctx: ContractContext, id: string, feeRate: FeeRate): Promise<{ txid: string; fee: bigint }> {
  const rec = payerChannel(ctx, id);
  if (rec.status === 'refunding' || rec.status === 'refunded') return { txid: rec.refund.txid, fee: 0n };
  if (rec.status === 'closing' || rec.status === 'closed') {
    throw new SwarmpayError('CHANNEL_STATE', `channel ${id} was closed by the payee (${rec.close.txid}): the close paid this wallet its remainder`, { hint: 'nothing is left to refund' });
  }
  const tip = await ctx.chain.tipHeight();
  if (tip < rec.terms.expiry) {
    throw new SwarmpayError('CHANNEL_STATE', `channel ${id} expires at height ${rec.terms.expiry}; the tip is ${tip}`, { hint: `a refund is possible in ${rec.terms.expiry - tip} blocks`, details: { expiry: rec.terms.expiry, tip } });
  }
  // A refund (or close) already out, by a run cut short before it was stored: the chain says so.
  const seen = await lookAtChain(ctx.chain, ctx.network, rec, { mempool: true });
  if (seen.spend !== null) {
    const now = await updateChannel(ctx.session, id, (r) => advance(r, tip, seen), false);
    const spend = spendOf(now);
    if (spend?.kind === 'refund') return { txid: spend.tx.txid, fee: 0n };
    throw new SwarmpayError('CHANNEL_STATE', `channel ${id} was closed by the payee (${seen.spend.txid}): the close paid this wallet its remainder`, { hint: 'nothing is left to refund' });
  }
  const to = await ctx.wallet.payoutScript();
  const tx = refundTx(termsOf(rec), outpointOf(rec), to, feeRate, ctx.wallet.key('channel', rec.keyIndex).priv);
  await broadcastOnce(ctx.chain, tx.hex, tx.txid);
  await updateChannel(ctx.session, id, (r) => (r.status === 'refunding' || r.status === 'refunded' || r.status === 'closing' || r.status === 'closed' ? null : withState(r, { status: 'refunding', refund: { txid: tx.txid, height: tip, bumps: [] } })), true);
  return { txid: tx.txid, fee: tx.fee };
}

