/**
 * The payee: accepts channels within its policy, verifies each payment (amount only grows,
 * sequence in order, the payer's signature over the new close state), makes batches of
 * them durable with one journal append (group commit), and only then acknowledges them.
 * It closes a channel by broadcasting the newest state, on request or by itself before
 * the expiry.
 */
import { SwarmpayError } from '../errors.js';
import { MIN_RELAY_FEE_RATE, MAX_FEE_RATE, dustThreshold } from '../bitcoin/policy.js';
import { StateHasher, checkFunding, closablePayment, closeTx, closeVbytes, signState, verifyState, type ChannelTerms } from '../bitcoin/channel.js';
import { broadcastOnce } from '../chain/broadcast.js';
import type { Journal } from '../keystore/journal.js';
import type { PeerLink } from '../peer/link.js';
import { receiveAddress, type WalletContext } from '../wallet/wallet.js';
import { addressToScript } from '../bitcoin/address.js';
import { CHANNEL_CHAIN, contractKey } from '../wallet/hd.js';
import { encodeMessage, parseMessage, type Message } from './messages.js';
import { fundingOf, getChannel, listChannels, nextKeyIndex, journalRecord, openPaymentJournal, saveChannel, termsOf, type ChannelPayments, type ChannelRecord, type PaymentState } from './store.js';
import type { Json } from '../util/canonical-json.js';

export interface PayeePolicy {
  minCapacity: bigint;
  maxCapacity: bigint;
  /** The expiry must be at least this many blocks ahead when the channel opens. */
  minExpiryBlocks: number;
  /** Confirmations of the funding transaction before payments count. */
  confirmations: number;
  /** Close this many blocks before the expiry, so the close confirms before the payer can refund. */
  closeMargin: number;
}

/** Payments verified between two turns of the event loop (measured best in npm run bench). */
const YIELD_EVERY = 32;

/**
 * The payment journal is read whole when the payee starts, so once it grows past this it is
 * rewritten as each channel's newest state and its batch ids (a few hundred bytes a
 * channel): at full speed it would otherwise grow by about half a gigabyte an hour.
 */
export const JOURNAL_COMPACT_BYTES = 64 * 1024 * 1024;
/** Batch ids per record when the journal is rewritten, so no record grows without bound. */
const IDS_PER_RECORD = 10_000;

export const DEFAULT_POLICY: PayeePolicy = { minCapacity: 10_000n, maxCapacity: 100_000_000n, minExpiryBlocks: 12, confirmations: 1, closeMargin: 6 };

export interface PayeeContext extends WalletContext {
  policy: PayeePolicy;
  log: (msg: string) => void;
  /** Journal size that triggers a rewrite; JOURNAL_COMPACT_BYTES unless set. */
  compactJournalAt?: number;
}

/** A channel being paid: its verified-but-not-yet-durable tail, and what is durable. */
interface Live {
  rec: ChannelRecord;
  terms: ChannelTerms;
  hasher: StateHasher;
  committed: PaymentState;
  /** The newest verified state (committed, or ahead of it while a batch is being written). */
  head: PaymentState;
  ids: Set<string>;
  pendingIds: string[];
  link: PeerLink | null;
  confirmed: boolean;
}

function refuse(message: string, hint?: string): SwarmpayError {
  return new SwarmpayError('CHANNEL_REFUSED', message, hint === undefined ? {} : { hint });
}

export class Payee {
  private readonly live = new Map<string, Live>();
  private store: { journal: Journal; channels: Map<string, ChannelPayments> } | null = null;
  /** Channels with payments verified but not yet durable; one commit at the next turn covers them all. */
  private readonly dirty = new Set<Live>();
  private commitScheduled = false;
  /** The journal's size after its last rewrite (or failed attempt): the next waits until it has doubled. */
  private compactedBytes = 0;

  constructor(private readonly ctx: PayeeContext) {}

  /** Serves one peer link until it closes; a violation closes it with an error message to the peer. */
  async serve(link: PeerLink): Promise<void> {
    let current: Live | null = null;
    let handled = 0;
    try {
      for await (const bytes of link.messages()) {
        const m = parseMessage(bytes);
        current = await this.handle(link, m, current);
        // Messages already received are processed without returning to the event loop; a
        // turn every few lets journal writes complete and acknowledgements go out meanwhile.
        if (++handled % YIELD_EVERY === 0) await new Promise((r) => setImmediate(r));
      }
    } catch (e) {
      const err = e instanceof SwarmpayError ? e : new SwarmpayError('INTERNAL', String(e));
      this.ctx.log(`peer ${link.remoteKey.toString('hex').slice(0, 16)}…: ${err.code}: ${err.message}`);
      // What was verified before the violation is good: durable and acknowledged first.
      if (current?.link === link) this.commit();
      try {
        link.send(encodeMessage({ t: 'error', code: err.code, message: err.message }));
      } catch {
        /* the link is already gone */
      }
    } finally {
      if (current?.link === link) {
        this.commit(); // every verified payment is made durable, then acknowledged, before we let go
        current.link = null;
      }
      await link.close().catch(() => undefined);
    }
  }

  private async handle(link: PeerLink, m: Message, current: Live | null): Promise<Live | null> {
    switch (m.t) {
      case 'open':
        await this.onOpen(link, m);
        return null;
      case 'funded':
        return this.onFunded(link, m);
      case 'hello':
        return this.onHello(link, m.id);
      case 'known?': {
        const live = this.attached(link, current, m.id);
        link.send(encodeMessage({ t: 'known', id: m.id, ids: m.ids.filter((i) => live.ids.has(i)) }));
        return live;
      }
      case 'pay':
        this.onPay(this.attached(link, current, m.id), m);
        return current;
      case 'close': {
        const live = this.attached(link, current, m.id);
        this.commit();
        const txid = await this.closeChannel(m.id);
        link.send(encodeMessage({ t: 'closed', id: m.id, txid }));
        return live;
      }
      default:
        throw new SwarmpayError('PEER_PROTOCOL', `the payer sent "${m.t}", which a payee never expects`);
    }
  }

  private attached(link: PeerLink, current: Live | null, id: string): Live {
    if (!current || current.rec.id !== id) throw new SwarmpayError('PEER_PROTOCOL', `message for channel ${id} before "hello" for it`);
    if (current.link !== link) throw refuse(`channel ${id} is now paid over a newer connection`);
    return current;
  }

  private async onOpen(link: PeerLink, m: Extract<Message, { t: 'open' }>): Promise<void> {
    const p = this.ctx.policy;
    if (m.network !== this.ctx.network) throw refuse(`the channel is for ${m.network}, this payee is on ${this.ctx.network}`);
    if (m.capacity < p.minCapacity || m.capacity > p.maxCapacity) throw refuse(`capacity ${m.capacity} sats is outside this payee's range ${p.minCapacity}-${p.maxCapacity}`);
    const tip = await this.ctx.chain.tipHeight();
    if (m.expiry < tip + p.minExpiryBlocks) throw refuse(`the expiry at height ${m.expiry} is too near: this payee needs at least ${p.minExpiryBlocks} blocks (the tip is ${tip})`, 'open with a later --expiry');
    const payerScript = Buffer.from(m.payerScript, 'hex');
    if (listChannels(this.ctx.session).some((c) => c.id === m.id)) throw refuse(`channel id ${m.id} is taken`);
    const keyIndex = nextKeyIndex(this.ctx.session);
    const key = contractKey(this.ctx.seed, this.ctx.network, CHANNEL_CHAIN, keyIndex);
    const payeeScript = addressToScript((await receiveAddress(this.ctx.chain, this.ctx.networkDir, this.ctx.network)).address, this.ctx.network);
    const vbytes = closeVbytes({ payeeScript, payerScript });
    if (m.closeFee < vbytes * MIN_RELAY_FEE_RATE || m.closeFee > vbytes * MAX_FEE_RATE) throw refuse(`close fee ${m.closeFee} sats is outside ${vbytes * MIN_RELAY_FEE_RATE}-${vbytes * MAX_FEE_RATE} for a ${vbytes} vB close`);
    if (m.capacity < m.closeFee + dustThreshold(payeeScript)) throw refuse(`capacity ${m.capacity} sats cannot pay even the close fee and a non-dust output`);
    const rec: ChannelRecord = {
      id: m.id,
      role: 'payee',
      terms: { payerPubkey: m.payerPubkey, payeePubkey: key.pub.toString('hex'), expiry: m.expiry, capacity: m.capacity.toString(), closeFee: m.closeFee.toString(), payeeScript: Buffer.from(payeeScript).toString('hex'), payerScript: m.payerScript },
      keyIndex,
      funding: null,
      confirmations: p.confirmations,
      peer: null,
      peerKey: link.remoteKey.toString('hex'),
      status: 'opening',
      closeTxid: null,
      refundTxid: null,
      created: new Date().toISOString(),
    };
    termsOf(rec); // the terms must parse before they are stored
    await saveChannel(this.ctx.session, rec, false);
    link.send(encodeMessage({ t: 'accept', id: m.id, payeePubkey: rec.terms.payeePubkey, payeeScript: rec.terms.payeeScript, confirmations: p.confirmations }));
  }

  private async onFunded(link: PeerLink, m: Extract<Message, { t: 'funded' }>): Promise<Live> {
    const rec = getChannel(this.ctx.session, m.id);
    if (rec.role !== 'payee' || rec.status !== 'opening' || rec.peerKey !== link.remoteKey.toString('hex')) throw refuse(`channel ${m.id} is not waiting for funding from this peer`);
    const outpoint = checkFunding(termsOf(rec), this.ctx.network, m.tx, m.vout);
    // The payer broadcasts it; sending it again makes sure our node has it too.
    await broadcastOnce(this.ctx.chain, m.tx, outpoint.txid);
    const opened: ChannelRecord = { ...rec, funding: { ...outpoint, tx: m.tx }, status: 'open' };
    await saveChannel(this.ctx.session, opened, true);
    this.ctx.log(`channel ${m.id} open: ${rec.terms.capacity} sats, funding ${outpoint.txid}:${outpoint.vout}`);
    return this.onHello(link, m.id);
  }

  private async load(id: string): Promise<Live> {
    const existing = this.live.get(id);
    if (existing) return existing;
    const rec = getChannel(this.ctx.session, id);
    const terms = termsOf(rec);
    this.store ??= openPaymentJournal(this.ctx.session, this.ctx.networkDir);
    const paid = this.store.channels.get(id) ?? { state: { seq: 0, cumulative: 0n, sig: null }, ids: new Set<string>() };
    const live: Live = { rec, terms, hasher: new StateHasher(terms, fundingOf(rec)), committed: paid.state, head: paid.state, ids: paid.ids, pendingIds: [], link: null, confirmed: false };
    this.live.set(id, live);
    return live;
  }

  private async onHello(link: PeerLink, id: string): Promise<Live> {
    const rec = getChannel(this.ctx.session, id);
    if (rec.role !== 'payee' || rec.peerKey !== link.remoteKey.toString('hex')) throw refuse(`channel ${id} is not this peer's`);
    const live = await this.load(id);
    if (live.link && live.link !== link) {
      // The payer came back (after a crash, say) while its old connection still looks open:
      // the newest connection takes over, once what the old one sent is durable.
      this.commit();
      const old = live.link;
      live.link = null;
      void old.close().catch(() => undefined);
    }
    live.link = link;
    live.rec = getChannel(this.ctx.session, id);
    const confirmations = live.rec.funding ? ((await this.ctx.chain.getTransaction(live.rec.funding.txid))?.confirmations ?? 0) : 0;
    live.confirmed = confirmations >= live.rec.confirmations;
    const s = live.committed;
    link.send(encodeMessage({ t: 'state', id, seq: s.seq, cumulative: s.cumulative, sig: s.sig, confirmations, status: live.rec.status }));
    return live;
  }

  private onPay(live: Live, m: Extract<Message, { t: 'pay' }>): void {
    if (live.rec.status !== 'open') throw refuse(`channel ${live.rec.id} is ${live.rec.status}`);
    if (!live.confirmed) throw refuse(`the funding of channel ${live.rec.id} has fewer than ${live.rec.confirmations} confirmations`, 'wait for it to confirm, then pay');
    const head = live.head;
    if (m.seq !== head.seq + 1) throw refuse(`payment sequence ${m.seq} where ${head.seq + 1} was due (a reused or skipped sequence number)`);
    if (m.cumulative <= head.cumulative) throw refuse(`payment ${m.seq} would lower (or keep) the amount paid: ${m.cumulative} after ${head.cumulative} sats`);
    if (m.cumulative > live.terms.capacity) throw refuse(`payment ${m.seq} would pay ${m.cumulative} sats, more than the capacity of ${live.terms.capacity}`);
    if (m.pid !== null && (live.ids.has(m.pid) || live.pendingIds.includes(m.pid))) throw refuse(`payment id "${m.pid}" was paid already`);
    const sig = Buffer.from(m.sig, 'hex');
    if (!verifyState(live.hasher.sighash(m.cumulative), live.terms.payerPubkey, sig)) throw refuse(`the signature of payment ${m.seq} does not verify for this channel and amount`);
    live.head = { seq: m.seq, cumulative: m.cumulative, sig: m.sig };
    if (m.pid !== null) live.pendingIds.push(m.pid);
    this.dirty.add(live);
    if (!this.commitScheduled) {
      this.commitScheduled = true;
      setImmediate(() => this.commit());
    }
  }

  /**
   * Group commit: one journal append, one fsync, for everything verified on every channel
   * since the last one, then one acknowledgement per channel. Scheduled once per turn of
   * the event loop; also called directly to flush.
   */
  private commit(): void {
    this.commitScheduled = false;
    if (this.dirty.size === 0 || !this.store) return;
    const batch = [...this.dirty].filter((l) => l.head.seq > l.committed.seq);
    this.dirty.clear();
    const ids = batch.map((l) => l.pendingIds.splice(0));
    try {
      this.store.journal.append(batch.map((l, i) => journalRecord(l.rec.id, l.head, ids[i]!)));
    } catch (e) {
      // Nothing of this batch is durable, so nothing of it counts: back to what is.
      const err = e instanceof SwarmpayError ? e : new SwarmpayError('IO_ERROR', String(e));
      for (const l of batch) {
        l.head = l.committed;
        this.ctx.log(`channel ${l.rec.id}: cannot persist payments: ${err.message}`);
        l.link?.send(encodeMessage({ t: 'error', code: err.code, message: `the payee cannot store payments: ${err.message}` }));
        void l.link?.close().catch(() => undefined);
      }
      return;
    }
    batch.forEach((l, i) => {
      l.committed = l.head;
      for (const pid of ids[i]!) l.ids.add(pid);
      l.link?.send(encodeMessage({ t: 'ack', id: l.rec.id, seq: l.head.seq }));
    });
    const bytes = this.store.journal.bytes;
    if (bytes > (this.ctx.compactJournalAt ?? JOURNAL_COMPACT_BYTES) && bytes > 2 * this.compactedBytes) this.compact(this.store);
  }

  /**
   * Rewrites the journal as what it means: per channel the newest durable state and every
   * batch id paid. Called right after a commit, so nothing verified is left out of it.
   */
  private compact(store: { journal: Journal; channels: Map<string, ChannelPayments> }): void {
    const records: Json[] = [];
    for (const id of new Set([...store.channels.keys(), ...this.live.keys()])) {
      const live = this.live.get(id);
      const { state, ids } = live ? { state: live.committed, ids: live.ids } : store.channels.get(id)!;
      if (state.sig === null) continue;
      const all = [...ids];
      for (let i = 0; i === 0 || i < all.length; i += IDS_PER_RECORD) {
        records.push(journalRecord(id, state, all.slice(i, i + IDS_PER_RECORD)));
      }
    }
    try {
      store.journal.rewrite(records);
    } catch (e) {
      // The journal as it was still holds every payment: a failed rewrite costs only disk space.
      this.ctx.log(`cannot compact the payment journal: ${e instanceof Error ? e.message : String(e)}; it goes on growing`);
    }
    this.compactedBytes = store.journal.bytes;
  }

  /** Signs and broadcasts the newest state; returns the close txid. */
  async closeChannel(id: string): Promise<string> {
    const live = await this.load(id);
    this.commit();
    const rec = getChannel(this.ctx.session, id);
    if (rec.status === 'closing') return rec.closeTxid!;
    if (rec.status !== 'open') throw new SwarmpayError('CHANNEL_STATE', `channel ${id} is ${rec.status}, not open`);
    const s = live.committed;
    if (s.sig === null || s.cumulative < closablePayment(live.terms)) {
      throw new SwarmpayError('CHANNEL_STATE', `channel ${id} has ${s.cumulative} sats paid, less than the ${closablePayment(live.terms)} a close needs to pay anything`, { hint: 'take more payments first; otherwise the payer refunds it after the expiry' });
    }
    const key = contractKey(this.ctx.seed, this.ctx.network, CHANNEL_CHAIN, rec.keyIndex);
    const mine = signState(live.hasher.sighash(s.cumulative), key.priv);
    const tx = closeTx(live.terms, fundingOf(rec), s.cumulative, Buffer.from(s.sig, 'hex'), mine);
    // Rebuilt from the journal the same way every time, so a crash before the record is
    // written only means broadcasting it again.
    await broadcastOnce(this.ctx.chain, tx.hex, tx.txid);
    await saveChannel(this.ctx.session, { ...rec, status: 'closing', closeTxid: tx.txid }, true);
    live.rec = getChannel(this.ctx.session, id);
    this.ctx.log(`channel ${id} closing: ${s.cumulative} sats paid over ${s.seq} payments, ${tx.txid}`);
    return tx.txid;
  }

  /** Closes every open channel whose expiry is within the margin. */
  async closeExpiring(): Promise<string[]> {
    const tip = await this.ctx.chain.tipHeight();
    const closed: string[] = [];
    for (const rec of listChannels(this.ctx.session)) {
      if (rec.role === 'payee' && rec.status === 'open' && tip >= rec.terms.expiry - this.ctx.policy.closeMargin) {
        const live = await this.load(rec.id);
        if (live.committed.sig !== null && live.committed.cumulative >= closablePayment(live.terms)) closed.push(await this.closeChannel(rec.id));
      }
    }
    return closed;
  }

  /** Makes every verified payment durable and closes the journals. */
  async shutdown(): Promise<void> {
    this.commit();
    this.store?.journal.close();
    this.store = null;
    this.live.clear();
  }
}
