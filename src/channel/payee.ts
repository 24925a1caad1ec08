/**
 * The payee: agrees to channels within its policy (storing nothing until one is funded),
 * verifies each payment (the channel open, funded, unspent and not near its expiry; amount
 * only grows, sequence in order, the payer's signature over the new close state), makes
 * batches of them durable with one journal append (group commit), and only then
 * acknowledges them. It closes a channel by broadcasting the newest state, on request or
 * by itself before the expiry, and sees the close confirm: re-broadcast if it leaves the
 * mempool, bumped by CPFP if it waits too long.
 */
import { SwarmpayError } from '../errors.js';
import { dustThreshold, MIN_RELAY_FEE_RATE, payoutType } from '../bitcoin/policy.js';
import { StateHasher, channelOutput, checkFunding, closablePayment, closeTx, closeVbytes, signState, verifyState, type ChannelTerms } from '../bitcoin/channel.js';
import type { Outpoint } from '../bitcoin/outpoint.js';
import { broadcastOnce } from '../chain/broadcast.js';
import type { Journal } from '../keystore/journal.js';
import type { PeerLink } from '../peer/link.js';
import type { ContractContext } from '../wallet/contract-wallet.js';
import type { Json } from '../util/canonical-json.js';
import { faultPointAfterWrites } from '../util/fault.js';
import { CHANNEL_PROTOCOL, MAX_CLOSE_MARGIN, MAX_CONFIRMATIONS, MAX_UNCOVERED, MIN_CONFIRMATIONS, channelConversation, encodeMessage, type Message } from './messages.js';
import { isPaymentsFrame, readPayments, type PaymentsSink } from './payments-codec.js';
import { ShapeError } from '../util/shape.js';
import { settleFeeRate, nextBumpRate } from '../chain/fees.js';
import { advance, blocksLeft, lookAtChain, notOpen, refusal, type FundingView } from './lifecycle.js';
import { openTicket, sealTicket } from './ticket.js';
import { bumpSpend } from './bump.js';
import {
  KeyIndexes, SETTLED, closePaymentJournal, findChannel, stateRecords, getChannel, insertChannel, journalRecord, listChannels, openPaymentJournal, outpointOf, termsOf, updateChannel, withState,
  type ChannelPayments, type PayeeRecord, type PaymentState, type SpendTx,
} from './store.js';
import { FeeRate } from '../bitcoin/fee-rate.js';
import { DEFAULT_POLICY, type PayeePolicy } from './defaults.js';

export { DEFAULT_POLICY, type PayeePolicy };

/** Payments verified between two turns of the event loop (measured best in npm run bench). */
const YIELD_EVERY = 32;
/** How often, while serving, the tip is read again (and every paid channel's funding, when it moved). */
const LOOK_MS = 2_000;
/** A funding is looked at again at least this often even if the tip did not move. */
const LOOK_ANYWAY_MS = 30_000;
/** Payments are refused once the chain has not been seen for this long: the cache is too old to trust. */
const STALE_MS = 30_000;
/** Payments may wait this long for a signed state that covers them; then the link is closed. */
const UNSIGNED_TIMEOUT_MS = 5_000;
/** One payout address serves the opens of a few seconds, so strangers' opens cost few chain scans. */
const PAYOUT_ADDRESS_MS = 10_000;

/**
 * The payment journal is read whole when the payee starts, so once it grows past this it is
 * rewritten as each channel's newest state and its batch ids (a few hundred bytes a
 * channel): at full speed it would otherwise grow by about half a gigabyte an hour.
 */
/**
 * The most a payee takes as a close fee, as a multiple of what its node asks: the two
 * sides' nodes estimate apart, but a close fee comes out of the payee's share, so a payer
 * must not be able to make the payee's first payments go to miners.
 */
const MAX_CLOSE_FEE_FACTOR = 3n;

const JOURNAL_COMPACT_BYTES = 64 * 1024 * 1024;

/**
 * A payee's policy: the defaults where a field is not given, checked as a whole. A margin
 * at or past the least expiry would take every channel's payments before its first; a range
 * of capacities that is empty would refuse every open.
 */
export function payeePolicy(given: Partial<PayeePolicy> = {}): PayeePolicy {
  const p: PayeePolicy = { ...DEFAULT_POLICY, ...given };
  const bad = (message: string, hint: string) => new SwarmpayError('USAGE', message, { hint });
  if (p.minCapacity > p.maxCapacity) throw bad(`the least capacity (${p.minCapacity} sats) is more than the largest (${p.maxCapacity})`, 'no channel could be opened; raise the largest or lower the least');
  if (p.confirmations < MIN_CONFIRMATIONS || p.confirmations > MAX_CONFIRMATIONS) throw bad(`${p.confirmations} confirmations: a payee asks for ${MIN_CONFIRMATIONS} to ${MAX_CONFIRMATIONS}`, 'the funding signals RBF: payments count only once it is in a block');
  if (p.closeMargin < 1 || p.closeMargin > MAX_CLOSE_MARGIN) throw bad(`a close margin of ${p.closeMargin} blocks: it must be 1 to ${MAX_CLOSE_MARGIN}`, 'the payee closes this many blocks before the expiry');
  if (p.minExpiryBlocks <= p.closeMargin) throw bad(`the least expiry (${p.minExpiryBlocks} blocks) must be more than the close margin (${p.closeMargin})`, 'a channel must have blocks for payments before the margin stops them');
  if (p.bumpAfter < 1) throw bad(`bump after ${p.bumpAfter} blocks: at least 1`, 'a close is bumped once it waited this many blocks');
  if (p.minCloseFeeRate.compare(MIN_RELAY_FEE_RATE) < 0) throw bad(`a least close fee rate of ${p.minCloseFeeRate} sat/vB: at least ${MIN_RELAY_FEE_RATE}`, `a close below ${MIN_RELAY_FEE_RATE} sat/vB does not relay`);
  return p;
}

export interface PayeeContext extends ContractContext {
  policy: PayeePolicy;
  log: (msg: string) => void;
  /** Journal size that triggers a rewrite; JOURNAL_COMPACT_BYTES unless set. */
  compactJournalAt?: number;
  /** How long payments may wait for a signed state; UNSIGNED_TIMEOUT_MS unless set. */
  unsignedTimeoutMs?: number;
}

/**
 * A channel being paid. Payments arrive ahead of the signed state that covers them: the
 * payments received but not yet covered, the newest verified state (not yet durable), and
 * what is durable; and what the chain last showed.
 */
interface Live {
  rec: PayeeRecord;
  terms: ChannelTerms;
  hasher: StateHasher;
  /** The newest durable state: what the payer has been told is acknowledged. */
  committed: PaymentState;
  /** The newest verified signed state (committed, or ahead of it while a batch is being written). */
  head: PaymentState;
  /** The last payment received (beyond `head` while no state covers it): its sequence number and cumulative amount. */
  recvSeq: number;
  recvCum: number;
  /**
   * The cumulative amount at each payment not yet covered, at seq % its length: a state must
   * name one of these. It grows (to MAX_UNCOVERED at most) with what waits, so a thousand
   * slow channels hold little.
   */
  cums: Float64Array;
  /** Batch ids of payments not yet covered, in order. */
  uncoveredIds: { seq: number; pid: string }[];
  /** Batch ids covered by `head` but not yet durable: they go into the next journal record. */
  pendingIds: string[];
  /** Every batch id received and not yet durable (covered or not), against paying one twice. */
  inflightIds: Set<string>;
  /** performance.now() when payments began to wait for a state to cover them; -1 when none waits. */
  uncoveredSince: number;
  /** Whether a check of that wait is scheduled (a state that covers only some of them restarts the wait, not the check). */
  unsignedCheck: boolean;
  ids: Set<string>;
  link: PeerLink | null;
  seen: FundingView;
  /** Why a payment is refused now, from the cached look at the chain; null while payments are taken. */
  refusal: SwarmpayError | null;
}

/**
 * Where a connection is: nothing yet; agreed to open a channel and waiting for its
 * funding; or paying (or asking about) one channel. Each admits its own messages.
 */
type Phase = { kind: 'fresh' } | { kind: 'opening'; id: string } | { kind: 'attached'; live: Live };

const FRESH: Phase = { kind: 'fresh' };

function refuse(message: string, hint?: string): SwarmpayError {
  return new SwarmpayError('CHANNEL_REFUSED', message, hint === undefined ? {} : { hint });
}

function unexpected(m: Message, phase: Phase): SwarmpayError {
  const where = phase.kind === 'fresh' ? 'before "hello", "open" or "funded"' : phase.kind === 'opening' ? `while channel ${phase.id} waits for "funded"` : `on channel ${phase.live.rec.id}`;
  return new SwarmpayError('PEER_PROTOCOL', `the payer sent "${m.t}" ${where}`);
}

export class Payee {
  private readonly live = new Map<string, Live>();
  private readonly store: { journal: Journal; channels: Map<string, ChannelPayments> };
  private readonly keys: KeyIndexes;
  /** Channels with payments verified but not yet durable; one commit at the next turn covers them all. */
  private readonly dirty = new Set<Live>();
  private commitScheduled = false;
  /** The journal's size after its last rewrite (or failed attempt): the next waits until it has doubled. */
  private compactedBytes = 0;
  private tip = 0;
  /** performance.now() of the last good look at the tip, and of the last look at every paid channel's funding. */
  private tipSeenAt = -Infinity;
  private fundingSeenAt = -Infinity;
  private looker: NodeJS.Timeout | null = null;
  private looking = false;
  private payout: { script: Promise<Buffer>; at: number } | null = null;
  private shut = false;
  /** A verified state: the channel joins the next group commit. */
  private readonly sink = new PaymentsIntake((live) => {
    this.dirty.add(live);
    if (!this.commitScheduled) {
      this.commitScheduled = true;
      setImmediate(() => this.flush());
    }
  });

  /** Takes the payment journal (one payee per datadir): a second is refused here, before it agrees to anything. */
  constructor(private readonly ctx: PayeeContext) {
    this.store = openPaymentJournal(ctx.session, ctx.networkDir);
    this.keys = new KeyIndexes(ctx.session);
  }

  /** Serves one peer link until it closes; a violation closes it with an error message to the peer. */
  async serve(link: PeerLink): Promise<void> {
    this.startLooking();
    let phase: Phase = FRESH;
    let handled = 0;
    // A payer may sit silent between payments for as long as the link's idle timeout lets
    // it; payments left waiting for a signed state have their own limit (armUnsigned).
    const conv = channelConversation(link, { hint: 'the payer went away', timeoutMs: 0 });
    try {
      for (let bytes = await conv.nextFrame(); bytes !== null; bytes = await conv.nextFrame()) {
        phase = isPaymentsFrame(bytes) ? this.payments(link, phase, bytes) : await this.step(link, phase, CHANNEL_PROTOCOL.parse(bytes));
        // Messages already received are processed without returning to the event loop; a
        // turn every few lets journal writes complete and acknowledgements go out meanwhile.
        if (++handled % YIELD_EVERY === 0) await new Promise((r) => setImmediate(r));
      }
    } catch (e) {
      const err = e instanceof SwarmpayError ? e : new SwarmpayError('INTERNAL', String(e));
      this.ctx.log(`peer ${link.remoteKey.toString('hex').slice(0, 16)}…: ${err.code}: ${err.message}`);
      // What was verified before the violation is good: durable and acknowledged first.
      if (phase.kind === 'attached' && phase.live.link === link) this.flush();
      this.tell(link, encodeMessage({ t: 'error', code: err.code, message: err.message }));
    } finally {
      if (phase.kind === 'attached' && phase.live.link === link) {
        this.flush(); // every verified payment is made durable, then acknowledged, before we let go
        dropUncovered(phase.live);
        phase.live.link = null;
      }
      await link.close().catch(() => undefined);
    }
  }

  private async step(link: PeerLink, phase: Phase, m: Message): Promise<Phase> {
    switch (phase.kind) {
      case 'fresh':
        if (m.t === 'open') return { kind: 'opening', id: await this.onOpen(link, m) };
        if (m.t === 'funded') return { kind: 'attached', live: await this.onFunded(link, m) };
        if (m.t === 'hello') return { kind: 'attached', live: await this.onHello(link, m.id) };
        throw unexpected(m, phase);
      case 'opening':
        if (m.t === 'funded' && m.id === phase.id) return { kind: 'attached', live: await this.onFunded(link, m) };
        throw unexpected(m, phase);
      case 'attached': {
        if (m.t === 'hello') {
          // The connection moves to another channel: the one it leaves is paid over nothing now.
          if (phase.live.link === link && phase.live.rec.id !== m.id) {
            this.flush();
            phase.live.link = null;
          }
          return { kind: 'attached', live: await this.onHello(link, m.id) };
        }
        const live = phase.live;
        if ((m.t === 'known?' || m.t === 'close') && m.id !== live.rec.id) throw new SwarmpayError('PEER_PROTOCOL', `message for channel ${m.id} on a connection attached to ${live.rec.id}`);
        if (live.link !== link) throw refuse(`channel ${live.rec.id} is now paid over a newer connection`);
        switch (m.t) {
          case 'known?':
            link.send(encodeMessage({ t: 'known', id: m.id, ids: m.ids.filter((i) => live.ids.has(i)) }));
            return phase;
          case 'close': {
            const txid = await this.closeChannel(m.id);
            link.send(encodeMessage({ t: 'closed', id: m.id, txid }));
            return phase;
          }
          default:
            throw unexpected(m, phase);
        }
      }
    }
  }

  /** A frame of payments and signed states: only on a connection attached to a channel. */
  private payments(link: PeerLink, phase: Phase, frame: Buffer): Phase {
    if (phase.kind !== 'attached') throw new SwarmpayError('PEER_PROTOCOL', `the payer sent payments ${phase.kind === 'fresh' ? 'before "hello"' : `while channel ${phase.id} waits for "funded"`}`);
    if (phase.live.link !== link) throw refuse(`channel ${phase.live.rec.id} is now paid over a newer connection`);
    this.onPayments(phase.live, frame);
    return phase;
  }

  /** Checks everything an open needs, and answers with terms and a sealed ticket; stores nothing. */
  private async onOpen(link: PeerLink, m: Extract<Message, { t: 'open' }>): Promise<string> {
    const p = this.ctx.policy;
    if (m.network !== this.ctx.network) throw refuse(`the channel is for ${m.network}, this payee is on ${this.ctx.network}`);
    if (m.capacity < p.minCapacity || m.capacity > p.maxCapacity) throw refuse(`capacity ${m.capacity} sats is outside this payee's range ${p.minCapacity}-${p.maxCapacity}`);
    const payerScript = Buffer.from(m.payerScript, 'hex');
    if (payoutType(payerScript) === null) throw refuse(`the payer's payout script (${m.payerScript.slice(0, 80)}) is not a standard one: a close paying it would not relay`, 'pay out to a P2WPKH, P2WSH, P2TR, P2PKH or P2SH address');
    if (findChannel(this.ctx.session, m.id) !== null) throw refuse(`channel id ${m.id} is taken`);
    const tip = await this.ctx.chain.tipHeight();
    if (m.expiry < tip + p.minExpiryBlocks) throw refuse(`the expiry at height ${m.expiry} is too near: this payee needs at least ${p.minExpiryBlocks} blocks (the tip is ${tip})`, 'open with a later --expiry');
    const payeeScript = await this.payoutScript();
    const vbytes = closeVbytes({ payeeScript, payerScript });
    // The close fee comes out of the payee's share: at least what its node asks, and not
    // so much more that the payer could make the payee's first payments all fee.
    const rate = await settleFeeRate(this.ctx.chain, p.minCloseFeeRate);
    const least = rate.feeFor(vbytes);
    const most = rate.scaled(MAX_CLOSE_FEE_FACTOR, 1n).feeFor(vbytes);
    if (m.closeFee < least || m.closeFee > most) {
      throw refuse(`close fee ${m.closeFee} sats is outside ${least}-${most} for a ${vbytes} vB close (this payee's node asks ${rate} sat/vB, and takes up to ${MAX_CLOSE_FEE_FACTOR} times that)`, 'the payer\'s node estimates fees far from this payee\'s: check both nodes');
    }
    if (m.capacity < m.closeFee + dustThreshold(payeeScript)) throw refuse(`capacity ${m.capacity} sats cannot pay even the close fee and a non-dust output`);
    const keyIndex = await this.keys.take();
    const key = this.ctx.wallet.key('channel', keyIndex);
    const terms = { payerPubkey: m.payerPubkey, payeePubkey: key.pub.toString('hex'), expiry: m.expiry, capacity: m.capacity.toString(), closeFee: m.closeFee.toString(), payeeScript: payeeScript.toString('hex'), payerScript: m.payerScript };
    try {
      channelOutput(termsOf({ terms }), this.ctx.network); // every term the output is built from must hold
    } catch (e) {
      throw refuse(`the terms do not make a channel: ${(e as Error).message}`);
    }
    const ticket = sealTicket(this.ctx.session, link.remoteKey, { id: m.id, terms, keyIndex, confirmations: p.confirmations, closeMargin: p.closeMargin });
    link.send(encodeMessage({ t: 'accept', id: m.id, payeePubkey: terms.payeePubkey, payeeScript: terms.payeeScript, confirmations: p.confirmations, closeMargin: p.closeMargin, ticket }));
    faultPointAfterWrites('kill-after-accept');
    return m.id;
  }

  /**
   * The wallet's next receive address, looked up again every few seconds at most, and once
   * for all the opens that arrive together (a funding of many channels opens them at once):
   * each lookup derives and asks the node about forty addresses.
   */
  private payoutScript(): Promise<Buffer> {
    const now = performance.now();
    if (this.payout === null || now - this.payout.at > PAYOUT_ADDRESS_MS) {
      const script = this.ctx.wallet.payoutScript();
      // A failed lookup is not kept: the next open asks again.
      script.catch(() => {
        if (this.payout?.script === script) this.payout = null;
      });
      this.payout = { script, at: now };
    }
    return this.payout.script;
  }

  /** Takes a funding, at once or long after the open, on the strength of the ticket this payee sealed then. */
  private async onFunded(link: PeerLink, m: Extract<Message, { t: 'funded' }>): Promise<Live> {
    const t = openTicket(this.ctx.session, link.remoteKey, m.ticket);
    if (t.id !== m.id) throw refuse(`the ticket is for channel ${t.id}, not ${m.id}`);
    const outpoint = checkFunding(termsOf(t), this.ctx.network, m.tx, m.vout);
    if (findChannel(this.ctx.session, m.id) !== null) return this.openAlready(link, m.id, outpoint);
    const tip = await this.ctx.chain.tipHeight();
    if (t.terms.expiry - tip <= t.closeMargin) {
      throw new SwarmpayError('CHANNEL_EXPIRING', `channel ${m.id} expires at height ${t.terms.expiry}, within this payee's close margin of ${t.closeMargin} blocks of the tip (${tip}): too late to open`, { hint: 'the payer refunds its funding after the expiry' });
    }
    // The payer broadcasts it; sending it again makes sure our node has it too (unless it
    // shows the output already: a funding of many channels comes once per channel).
    if ((await this.ctx.chain.txOut(outpoint)) === null) await broadcastOnce(this.ctx.chain, m.tx, outpoint.txid);
    const rec: PayeeRecord = {
      id: m.id,
      role: 'payee',
      terms: t.terms,
      keyIndex: t.keyIndex,
      confirmations: t.confirmations,
      closeMargin: t.closeMargin,
      peerKey: link.remoteKey.toString('hex'),
      created: new Date().toISOString(),
      status: 'open',
      funding: outpoint,
    };
    // Stored only if nobody stored this id meanwhile (another connection with the same ticket and another funding).
    if (!(await insertChannel(this.ctx.session, rec, true))) return this.openAlready(link, m.id, outpoint);
    this.ctx.log(`channel ${m.id} open: ${t.terms.capacity} sats, funding ${outpoint.txid}:${outpoint.vout}`);
    return this.onHello(link, m.id);
  }

  /** A `funded` for a channel stored already: the same funding from the same payer is answered again (it did not hear the first answer); anything else is refused. */
  private openAlready(link: PeerLink, id: string, funding: Outpoint): Promise<Live> {
    const stored = findChannel(this.ctx.session, id);
    if (stored?.role === 'payee' && stored.funding.txid === funding.txid && stored.funding.vout === funding.vout && stored.peerKey === link.remoteKey.toString('hex')) return this.onHello(link, id);
    throw refuse(`channel id ${id} is taken`);
  }

  private load(rec: PayeeRecord): Live {
    const existing = this.live.get(rec.id);
    // A Live is built for one funding: its hasher signs over that outpoint.
    if (existing && existing.rec.funding.txid === rec.funding.txid && existing.rec.funding.vout === rec.funding.vout) return existing;
    const terms = termsOf(rec);
    const paid = this.store.channels.get(rec.id) ?? { state: { seq: 0, cumulative: 0n, sig: null }, ids: new Set<string>() };
    const live: Live = {
      rec, terms, hasher: new StateHasher(terms, outpointOf(rec)), committed: paid.state, head: paid.state, ids: paid.ids, link: null,
      recvSeq: paid.state.seq, recvCum: Number(paid.state.cumulative), cums: new Float64Array(MIN_RING), uncoveredIds: [], pendingIds: [], inflightIds: new Set(), uncoveredSince: -1, unsignedCheck: false,
      seen: { confirmations: null, spend: null },
      refusal: new SwarmpayError('CHANNEL_STATE', `channel ${rec.id} has not been checked against the chain yet`),
    };
    this.live.set(rec.id, live);
    return live;
  }

  private payeeChannel(id: string): PayeeRecord {
    const rec = getChannel(this.ctx.session, id);
    if (rec.role !== 'payee') throw refuse(`channel ${id} is not one this wallet is paid on`);
    return rec;
  }

  private async onHello(link: PeerLink, id: string): Promise<Live> {
    const rec = this.payeeChannel(id);
    if (rec.peerKey !== link.remoteKey.toString('hex')) throw refuse(`channel ${id} is not this peer's`);
    const live = this.load(rec);
    if (live.link && live.link !== link) {
      // The payer came back (after a crash, say) while its old connection still looks open:
      // the newest connection takes over, once what the old one sent is durable.
      this.flush();
      const old = live.link;
      live.link = null;
      void old.close().catch(() => undefined);
    }
    live.link = link;
    // The payer starts again from what is durable: payments no state covered are gone.
    this.flush();
    dropUncovered(live);
    // A fresh look for every connection, so what the payer is told is what the chain shows now.
    this.tip = await this.ctx.chain.tipHeight();
    this.tipSeenAt = performance.now();
    live.seen = await lookAtChain(this.ctx.chain, this.ctx.network, rec);
    live.rec = this.payeeChannel(id);
    live.refusal = refusal(live.rec, this.tip, live.seen);
    const s = live.committed;
    link.send(encodeMessage({ t: 'state', id, seq: s.seq, cumulative: s.cumulative, sig: s.sig, confirmations: live.seen.confirmations ?? 0, status: live.rec.status }));
    return live;
  }

  /**
   * Takes a frame of payments and signed states. A payment is checked (next in sequence,
   * within the capacity, its batch id not paid) and held until a signed state covers it;
   * a state must name the amount the payments up to it add up to, and carry the payer's
   * signature over the close for it. Only then is it the newest state, made durable by the
   * next commit, and acknowledged.
   */
  private onPayments(live: Live, frame: Buffer): void {
    if (live.refusal) throw live.refusal;
    if (performance.now() - this.tipSeenAt > STALE_MS) {
      throw new SwarmpayError('NODE_UNREACHABLE', `the payee has not seen the chain for ${Math.round((performance.now() - this.tipSeenAt) / 1000)} s, so it takes no payment`, { hint: 'try again once its node answers' });
    }
    const sink = this.sink;
    sink.live = live;
    sink.capacity = Number(live.terms.capacity);
    try {
      readPayments(frame, sink);
    } catch (e) {
      if (e instanceof ShapeError) throw new SwarmpayError('PEER_PROTOCOL', `the payer sent a malformed payments frame: ${e.message}`);
      throw e;
    }
    if (live.recvSeq > live.head.seq) this.armUnsigned(live);
  }

  /** Payments no state covers may wait `unsignedTimeoutMs`; then the link is closed (nothing of them counts). */
  private armUnsigned(live: Live): void {
    if (live.uncoveredSince < 0) live.uncoveredSince = performance.now();
    if (live.unsignedCheck) return;
    live.unsignedCheck = true;
    const ms = this.ctx.unsignedTimeoutMs ?? UNSIGNED_TIMEOUT_MS;
    const check = () => {
      if (live.uncoveredSince < 0 || live.link === null) {
        live.unsignedCheck = false;
        return;
      }
      const waited = performance.now() - live.uncoveredSince;
      if (waited < ms) {
        setTimeout(check, ms - waited).unref();
        return;
      }
      live.unsignedCheck = false;
      const link = live.link;
      this.ctx.log(`channel ${live.rec.id}: ${live.recvSeq - live.head.seq} payments waited ${Math.round(waited)} ms for a signed state; closing the link`);
      this.tell(link, encodeMessage({ t: 'error', code: 'PEER_PROTOCOL', message: `payments ${live.head.seq + 1} to ${live.recvSeq} waited ${Math.round(waited / 1000)} s for a signed state that covers them: none counts` }));
      void link.close().catch(() => undefined);
    };
    setTimeout(check, ms - (performance.now() - live.uncoveredSince)).unref();
  }

  /** Reads the tip every few seconds while serving, and each paid channel's funding when the tip moves. */
  private startLooking(): void {
    if (this.looker) return;
    this.looker = setInterval(() => void this.look().catch((e: unknown) => this.ctx.log(`cannot see the chain: ${(e as Error).message}`)), LOOK_MS);
    this.looker.unref();
  }

  private async look(): Promise<void> {
    // A slow node must not stack looks on top of each other.
    if (this.looking) return;
    this.looking = true;
    try {
      await this.lookNow();
    } finally {
      this.looking = false;
    }
  }

  private async lookNow(): Promise<void> {
    const tip = await this.ctx.chain.tipHeight();
    const now = performance.now();
    const all = tip !== this.tip || now - this.fundingSeenAt > LOOK_ANYWAY_MS;
    this.tip = tip;
    this.tipSeenAt = now;
    for (const live of this.live.values()) {
      if (live.link === null) continue;
      if (all) live.seen = await lookAtChain(this.ctx.chain, this.ctx.network, live.rec);
      live.rec = this.payeeChannel(live.rec.id);
      live.refusal = refusal(live.rec, this.tip, live.seen);
    }
    if (all) this.fundingSeenAt = now;
  }

  /** Commits what is verified and acknowledges it: each acknowledgement on its own, so a link that is gone costs the others nothing. */
  private flush(): void {
    for (const a of this.commit()) this.tell(a.link, encodeMessage({ t: 'ack', id: a.id, seq: a.seq }));
  }

  /** Sends to a peer that may have gone: if it has, that link (and only it) is closed. */
  private tell(link: PeerLink, bytes: Buffer): void {
    try {
      link.send(bytes);
    } catch {
      void link.close().catch(() => undefined);
    }
  }

  /**
   * Group commit: one journal append, one fsync, for everything verified on every channel
   * since the last one. Returns what is now durable, to acknowledge. Scheduled once per
   * turn of the event loop; also called to flush before a close or a takeover.
   */
  private commit(): { link: PeerLink; id: string; seq: number }[] {
    this.commitScheduled = false;
    if (this.dirty.size === 0) return [];
    const batch = [...this.dirty].filter((l) => l.head.seq > l.committed.seq).map((l) => ({ l, ids: l.pendingIds.splice(0) }));
    this.dirty.clear();
    try {
      this.store.journal.append(batch.map(({ l, ids }) => journalRecord(l.rec.id, l.head, ids)));
    } catch (e) {
      // Nothing of this batch is durable, so nothing of it counts: back to what is.
      const err = e instanceof SwarmpayError ? e : new SwarmpayError('IO_ERROR', String(e));
      for (const { l, ids } of batch) {
        l.head = l.committed;
        for (const pid of ids) l.inflightIds.delete(pid);
        dropUncovered(l);
        this.ctx.log(`channel ${l.rec.id}: cannot persist payments: ${err.message}`);
        if (l.link) {
          this.tell(l.link, encodeMessage({ t: 'error', code: err.code, message: `the payee cannot store payments: ${err.message}` }));
          void l.link.close().catch(() => undefined);
        }
      }
      return [];
    }
    const acks: { link: PeerLink; id: string; seq: number }[] = [];
    batch.forEach(({ l, ids }) => {
      l.committed = l.head;
      for (const pid of ids) {
        l.ids.add(pid);
        l.inflightIds.delete(pid);
      }
      if (l.link) acks.push({ link: l.link, id: l.rec.id, seq: l.head.seq });
    });
    const bytes = this.store.journal.bytes;
    if (bytes > (this.ctx.compactJournalAt ?? JOURNAL_COMPACT_BYTES) && bytes > 2 * this.compactedBytes) this.compact();
    return acks;
  }

  /**
   * Rewrites the journal as what it means: per channel the newest durable state and every
   * batch id paid. Called right after a commit, so nothing verified is left out of it.
   */
  private compact(): void {
    const store = this.store;
    const records: Json[] = [];
    const durable = new Map<string, { state: PaymentState; ids: Set<string> }>(store.channels);
    for (const [id, live] of this.live) durable.set(id, { state: live.committed, ids: live.ids });
    for (const [id, { state, ids }] of durable) if (state.sig !== null) records.push(...stateRecords(id, state, ids));
    try {
      store.journal.rewrite(records);
    } catch (e) {
      // The journal as it was still holds every payment: a failed rewrite costs only disk space.
      this.ctx.log(`cannot compact the payment journal: ${e instanceof Error ? e.message : String(e)}; it goes on growing`);
    }
    this.compactedBytes = store.journal.bytes;
  }

  /** The newest durable state of a channel: what a close would pay. */
  private durable(id: string): PaymentState {
    return this.live.get(id)?.committed ?? this.store.channels.get(id)?.state ?? { seq: 0, cumulative: 0n, sig: null };
  }

  private closable(rec: PayeeRecord): boolean {
    const s = this.durable(rec.id);
    return s.sig !== null && s.cumulative >= closablePayment(termsOf(rec));
  }

  /** The close of the newest durable state, signed by both: the same transaction every time (RFC 6979 signatures). */
  private closeOf(rec: PayeeRecord): { hex: string; txid: string; state: PaymentState } {
    const s = this.durable(rec.id);
    const t = termsOf(rec);
    if (s.sig === null || s.cumulative < closablePayment(t)) {
      throw new SwarmpayError('CHANNEL_STATE', `channel ${rec.id} has ${s.cumulative} sats paid, less than the ${closablePayment(t)} a close needs to pay anything`, { hint: 'take more payments first; otherwise the payer refunds it after the expiry' });
    }
    const hasher = this.live.get(rec.id)?.hasher ?? new StateHasher(t, outpointOf(rec));
    const mine = signState(hasher.sighash(s.cumulative), this.ctx.wallet.key('channel', rec.keyIndex).priv);
    return { ...closeTx(t, outpointOf(rec), s.cumulative, Buffer.from(s.sig, 'hex'), mine), state: s };
  }

  /** Signs and broadcasts the newest state; returns the close txid. */
  async closeChannel(id: string): Promise<string> {
    const rec = this.payeeChannel(id);
    if (rec.status === 'closing' || rec.status === 'closed') return rec.close.txid;
    // An expired channel may have become closable since (a payment just before the margin).
    if (rec.status !== 'open' && rec.status !== 'expired') throw notOpen(rec);
    // Payments stop before the newest state is read: none is acknowledged that the close leaves out.
    const live = this.live.get(id);
    const was = live?.refusal ?? null;
    if (live) live.refusal = new SwarmpayError('CHANNEL_STATE', `channel ${id} is closing`, { hint: 'open a new channel' });
    let tx: ReturnType<Payee['closeOf']>;
    let tip: number;
    try {
      this.flush();
      tx = this.closeOf(rec);
      // Rebuilt from the journal the same way every time, so a crash before the record is
      // written only means broadcasting it again.
      await broadcastOnce(this.ctx.chain, tx.hex, tx.txid);
      tip = await this.ctx.chain.tipHeight();
    } catch (e) {
      if (live) live.refusal = was;
      throw e;
    }
    const stored = await updateChannel(this.ctx.session, id, (r) => (r.status === 'open' || r.status === 'expired' ? withState(r, { status: 'closing', close: { txid: tx.txid, height: tip, bumps: [] } }) : null), true);
    if (live && stored.role === 'payee') live.rec = stored;
    this.ctx.log(`channel ${id} closing: ${tx.state.cumulative} sats paid over ${tx.state.seq} payments, ${tx.txid}`);
    return tx.txid;
  }

  /**
   * The server's periodic look at every channel it is paid on: moves each to the status
   * the chain shows, closes those whose expiry is within the margin, and sees each close
   * to its confirmation. One channel's failure is logged and does not stop the others.
   */
  async tick(): Promise<void> {
    const tip = await this.ctx.chain.tipHeight();
    for (const rec of listChannels(this.ctx.session)) {
      if (rec.role !== 'payee' || SETTLED.has(rec.status)) continue;
      try {
        await this.watch(rec, tip);
      } catch (e) {
        this.ctx.log(`channel ${rec.id}: ${e instanceof SwarmpayError ? `${e.code}: ` : ''}${(e as Error).message}`);
      }
    }
  }

  private async watch(rec: PayeeRecord, tip: number): Promise<void> {
    const seen = await lookAtChain(this.ctx.chain, this.ctx.network, rec);
    const closable = this.closable(rec);
    let cur: PayeeRecord = rec;
    if (advance(rec, tip, seen, closable) !== null) {
      const stored = await updateChannel(this.ctx.session, rec.id, (r) => advance(r, tip, seen, closable), false);
      if (stored.role !== 'payee') return;
      cur = stored;
      if (cur.status !== rec.status) this.ctx.log(`channel ${rec.id} ${cur.status}${cur.status === 'expired' ? ': nothing to close on; the payer refunds it after the expiry' : cur.status === 'failed' ? `: ${cur.reason}` : ''}`);
      // A settled channel takes no more payments: what was kept to verify them goes.
      const live = this.live.get(rec.id);
      if (SETTLED.has(cur.status) && live && live.link === null) this.live.delete(rec.id);
    }
    if ((cur.status === 'open' || cur.status === 'expired') && blocksLeft(cur, tip) <= cur.closeMargin && closable) {
      await this.closeChannel(cur.id);
    } else if (cur.status === 'closing') {
      await this.seeCloseThrough(cur, seen, tip);
    }
  }

  /** A close not in the mempool is broadcast again; one that waited `bumpAfter` blocks is bumped. */
  private async seeCloseThrough(rec: PayeeRecord & { close: SpendTx }, seen: FundingView, tip: number): Promise<void> {
    if (seen.spend === null) {
      const tx = this.closeOf(rec);
      await broadcastOnce(this.ctx.chain, tx.hex, tx.txid);
      this.ctx.log(`channel ${rec.id}: the close ${tx.txid} had left the mempool; broadcast again`);
      return;
    }
    if (seen.spend.confirmations > 0) return;
    const last = rec.close.bumps[rec.close.bumps.length - 1];
    if (tip - (last?.height ?? rec.close.height) < this.ctx.policy.bumpAfter) return;
    const vsize = closeVbytes(termsOf(rec));
    const current = last !== undefined ? FeeRate.parse(last.feeRate) : FeeRate.paidBy(BigInt(rec.terms.closeFee), vsize);
    // A bump nobody asked for spends only what the close pays this wallet: rescuing a close
    // never costs the payee more than the close brings it. (`channel bump` may add coins.)
    const bump = await bumpSpend(this.ctx, rec, await nextBumpRate(this.ctx.chain, current), { parentOnly: true });
    this.ctx.log(`channel ${rec.id}: the close waited ${tip - (last?.height ?? rec.close.height)} blocks; bumped to ${bump.feeRate} sat/vB by ${bump.txid}`);
  }

  /** Makes every verified payment durable and closes the journal; once. */
  async shutdown(): Promise<void> {
    if (this.looker) clearInterval(this.looker);
    this.looker = null;
    if (this.shut) return;
    this.shut = true;
    this.flush();
    this.live.clear();
    await closePaymentJournal(this.ctx.session);
  }
}

/** The smallest ring of waiting amounts: what a payment a millisecond needs. */
const MIN_RING = 64;

/** A ring twice as long, holding the amounts of payments `from` + 1 to `to` at their new places. */
function regrow(ring: Float64Array, from: number, to: number): Float64Array {
  const next = new Float64Array(Math.min(2 * ring.length, MAX_UNCOVERED + 1));
  for (let s = from + 1; s <= to; s++) next[s % next.length] = ring[s % ring.length];
  return next;
}

/** Forgets payments no state covers (their link is gone, or a new one starts from what is durable). */
function dropUncovered(live: Live): void {
  for (const u of live.uncoveredIds) live.inflightIds.delete(u.pid);
  live.uncoveredIds = [];
  live.recvSeq = live.head.seq;
  live.recvCum = Number(live.head.cumulative);
  live.uncoveredSince = -1;
}

/** Where a payments frame's items land: one per payee, pointed at the channel being read. */
class PaymentsIntake implements PaymentsSink {
  live!: Live;
  capacity = 0;

  constructor(private readonly onState: (live: Live) => void) {}

  payment(seq: number, sats: number, pid: string | null): void {
    const l = this.live;
    if (seq !== l.recvSeq + 1) throw refuse(`payment sequence ${seq} where ${l.recvSeq + 1} was due (a reused or skipped sequence number)`);
    const cumulative = l.recvCum + sats;
    if (cumulative > this.capacity) throw refuse(`payment ${seq} would pay ${cumulative} sats, more than the capacity of ${this.capacity}`);
    const waiting = seq - l.head.seq;
    if (waiting > MAX_UNCOVERED) throw refuse(`more than ${MAX_UNCOVERED} payments without a signed state that covers them`);
    if (waiting >= l.cums.length) l.cums = regrow(l.cums, l.head.seq, l.recvSeq);
    if (pid !== null) {
      if (l.ids.has(pid) || l.inflightIds.has(pid)) throw refuse(`payment id "${pid}" was paid already`);
      l.inflightIds.add(pid);
      l.uncoveredIds.push({ seq, pid });
    }
    l.cums[seq % l.cums.length] = cumulative;
    l.recvSeq = seq;
    l.recvCum = cumulative;
  }

  state(seq: number, cumulative: number, sig: Buffer): void {
    const l = this.live;
    if (seq <= l.head.seq || seq > l.recvSeq) throw refuse(`a signed state for sequence ${seq}, where only payments ${l.head.seq + 1} to ${l.recvSeq} wait for one`);
    const owed = l.cums[seq % l.cums.length];
    if (cumulative !== owed) throw refuse(`the signed state at sequence ${seq} is for ${cumulative} sats, but the payments up to it add up to ${owed}`);
    if (!verifyState(l.hasher.sighash(BigInt(cumulative)), l.terms.payerPubkey, sig)) throw refuse(`the signature of the state at sequence ${seq} does not verify for this channel and amount`);
    l.head = { seq, cumulative: BigInt(cumulative), sig: sig.toString('hex') };
    let n = 0;
    while (n < l.uncoveredIds.length && l.uncoveredIds[n].seq <= seq) l.pendingIds.push(l.uncoveredIds[n++].pid);
    if (n > 0) l.uncoveredIds.splice(0, n);
    l.uncoveredSince = seq === l.recvSeq ? -1 : performance.now();
    this.onState(l);
  }
}
