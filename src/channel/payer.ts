/**
 * The payer: opens a channel (agrees terms with the payee, funds the output from the
 * wallet), then pays by signing ever-larger close states and sending them pipelined,
 * without waiting for each acknowledgement; refunds the whole output after the expiry.
 */
import { SwarmpayError } from '../errors.js';
import { addressToScript } from '../bitcoin/address.js';
import { checkFeeRate, dustThreshold } from '../bitcoin/policy.js';
import { StateHasher, channelOutput, closeVbytes, refundTx, signState, verifyState, type ChannelTerms } from '../bitcoin/channel.js';
import { broadcastOnce } from '../chain/broadcast.js';
import type { PeerLink } from '../peer/link.js';
import { nextFrame } from '../peer/json-messages.js';
import { planSend, signSend } from '../wallet/send.js';
import { receiveAddress, walletAccount, type WalletContext } from '../wallet/wallet.js';
import { CHANNEL_CHAIN, contractKey } from '../wallet/hd.js';
import { encodeMessage, expectType, parseMessage, type Message } from './messages.js';
import { fundingOf, getChannel, newChannelId, nextKeyIndex, saveChannel, termsOf, type ChannelRecord, type PaymentState, type PeerAddress } from './store.js';

/** How many payments may be in flight before the payer waits for acknowledgements. */
export const PAY_WINDOW = 2048;
/** Payments signed between two turns of the event loop (under a millisecond of signing). */
const SEND_YIELD_EVERY = 8;

/** Reads the next message from a link, or fails if the peer hung up. */
async function next(it: AsyncIterator<Buffer>): Promise<Message> {
  return parseMessage(await nextFrame(it, 'see the payee\'s log; nothing was paid that was not acknowledged'));
}

export interface OpenResult {
  rec: ChannelRecord;
  fundingTxid: string;
  fee: bigint;
}

export async function openChannel(
  ctx: WalletContext,
  link: PeerLink,
  peer: PeerAddress,
  opts: { capacity: bigint; expiryBlocks: number; feeRate: bigint },
): Promise<OpenResult> {
  checkFeeRate(opts.feeRate);
  const it = link.messages()[Symbol.asyncIterator]();
  const id = newChannelId();
  const keyIndex = nextKeyIndex(ctx.session);
  const key = contractKey(ctx.seed, ctx.network, CHANNEL_CHAIN, keyIndex);
  const payerScript = addressToScript((await receiveAddress(ctx.chain, ctx.networkDir, ctx.network)).address, ctx.network);
  const expiry = (await ctx.chain.tipHeight()) + opts.expiryBlocks;
  // The close fee is agreed for the payee's P2WPKH; the payee checks it against its own script.
  const closeFee = opts.feeRate * closeVbytes({ payeeScript: payerScript, payerScript });
  link.send(encodeMessage({ t: 'open', id, network: ctx.network, capacity: opts.capacity, expiry, closeFee, payerPubkey: key.pub.toString('hex'), payerScript: Buffer.from(payerScript).toString('hex') }));
  const accept = expectType(await next(it), 'accept');
  if (accept.id !== id) throw new SwarmpayError('PEER_PROTOCOL', 'the payee accepted another channel');
  const payeeScript = Buffer.from(accept.payeeScript, 'hex');
  if (dustThreshold(payeeScript) > opts.capacity) throw new SwarmpayError('CHANNEL_REFUSED', 'the payee\'s close script is not one this wallet can pay');
  const terms: ChannelTerms = { payerPubkey: key.pub, payeePubkey: Buffer.from(accept.payeePubkey, 'hex'), expiry, capacity: opts.capacity, closeFee, payeeScript, payerScript };
  const output = channelOutput(terms, ctx.network);

  const plan = await planSend(ctx.chain, walletAccount(ctx.networkDir, ctx.network), ctx.network, output.address, opts.capacity, opts.feeRate);
  const signed = signSend(plan, ctx.seed, ctx.network);
  const vout = 0; // planSend puts the payment first
  const rec: ChannelRecord = {
    id,
    role: 'payer',
    terms: {
      payerPubkey: key.pub.toString('hex'),
      payeePubkey: accept.payeePubkey,
      expiry,
      capacity: opts.capacity.toString(),
      closeFee: closeFee.toString(),
      payeeScript: accept.payeeScript,
      payerScript: Buffer.from(payerScript).toString('hex'),
    },
    keyIndex,
    funding: { txid: signed.txid, vout, tx: signed.hex },
    confirmations: accept.confirmations,
    peer,
    peerKey: link.remoteKey.toString('hex'),
    status: 'opening',
    closeTxid: null,
    refundTxid: null,
    created: new Date().toISOString(),
  };
  // Stored (a checkpoint) before the coins move: whatever happens next, the refund path is known.
  await saveChannel(ctx.session, rec, true);
  await broadcastOnce(ctx.chain, signed.hex, signed.txid);
  link.send(encodeMessage({ t: 'funded', id, tx: signed.hex, vout }));
  const state = expectType(await next(it), 'state');
  if (state.id !== id || state.status !== 'open') throw new SwarmpayError('PEER_PROTOCOL', `the payee did not open channel ${id}`);
  const opened = { ...rec, status: 'open' as const };
  await saveChannel(ctx.session, opened, false);
  return { rec: opened, fundingTxid: signed.txid, fee: signed.fee };
}

export interface PayResult {
  /** The sequence number and cumulative amount of the newest acknowledged state. */
  acked: PaymentState;
  /** Per payment sent, in order: its sequence number and whether the payee acknowledged it. */
  payments: { seq: number; sats: bigint; pid: string | null; acked: boolean }[];
  seconds: number;
  /** Why the run stopped early (the link failed, the payee refused); the payments say how far it got. */
  error?: unknown;
}

/**
 * A live payer session on one channel: reconciled with the payee's newest state (which
 * must carry this payer's own signature), then payments pipelined up to PAY_WINDOW.
 */
export class PayerSession {
  private it: AsyncIterator<Buffer>;
  private state!: PaymentState;
  private readonly terms: ChannelTerms;
  private readonly hasher: StateHasher;
  private readonly priv: Buffer;

  private constructor(
    private readonly ctx: WalletContext,
    private readonly link: PeerLink,
    readonly rec: ChannelRecord,
  ) {
    this.it = link.messages()[Symbol.asyncIterator]();
    this.terms = termsOf(rec);
    this.hasher = new StateHasher(this.terms, fundingOf(rec));
    this.priv = contractKey(ctx.seed, ctx.network, CHANNEL_CHAIN, rec.keyIndex).priv;
  }

  static async start(ctx: WalletContext, link: PeerLink, id: string): Promise<PayerSession> {
    const rec = getChannel(ctx.session, id);
    if (rec.role !== 'payer') throw new SwarmpayError('CHANNEL_STATE', `channel ${id} is one this wallet is paid on, not one it pays`);
    if (rec.status !== 'open') throw new SwarmpayError('CHANNEL_STATE', `channel ${id} is ${rec.status}`);
    if (link.remoteKey.toString('hex') !== rec.peerKey) throw new SwarmpayError('PEER_PROTOCOL', 'the peer is not the payee of this channel (another static key)');
    const s = new PayerSession(ctx, link, rec);
    link.send(encodeMessage({ t: 'hello', id }));
    const st = expectType(await next(s.it), 'state');
    if (st.id !== id) throw new SwarmpayError('PEER_PROTOCOL', 'the payee answered for another channel');
    if (st.status !== 'open') throw new SwarmpayError('CHANNEL_STATE', `the payee says channel ${id} is ${st.status}`);
    if (st.confirmations < rec.confirmations) {
      throw new SwarmpayError('CHANNEL_STATE', `the funding has ${st.confirmations} of ${rec.confirmations} confirmations`, { hint: 'wait for the funding transaction to confirm (channel open --wait), then pay' });
    }
    // The payee's newest state must be one this payer signed: never take its word for an amount.
    if (st.seq > 0 && (st.sig === null || !verifyState(s.hasher.sighash(st.cumulative), s.terms.payerPubkey, Buffer.from(st.sig, 'hex')))) {
      throw new SwarmpayError('PEER_PROTOCOL', `the payee claims a state (${st.cumulative} sats) that this payer never signed`);
    }
    s.state = { seq: st.seq, cumulative: st.cumulative, sig: st.sig };
    return s;
  }

  get paid(): PaymentState {
    return this.state;
  }

  /** Which of these batch ids the payee has already been paid for. */
  async known(ids: string[]): Promise<Set<string>> {
    const known = new Set<string>();
    for (let i = 0; i < ids.length; i += 1000) {
      this.link.send(encodeMessage({ t: 'known?', id: this.rec.id, ids: ids.slice(i, i + 1000) }));
      for (const k of expectType(await next(this.it), 'known').ids) known.add(k);
    }
    return known;
  }

  /**
   * Pays each amount in turn, pipelined; resolves when all are acknowledged or the link
   * fails. `onAck` hears each acknowledgement with the payment's latency; `pace` (payments
   * per second) spaces the sends, for measuring latency below saturation.
   */
  async pay(items: { sats: bigint; pid: string | null }[], onAck?: (seq: number, latencyMs: number) => void, pace?: number): Promise<PayResult> {
    const start = process.hrtime.bigint();
    const base = this.state;
    // Checked before anything is sent, so a run either sends all its payments or none.
    const total = items.reduce((a, i) => a + i.sats, base.cumulative);
    if (total > this.terms.capacity) {
      throw new SwarmpayError('CHANNEL_REFUSED', `these payments would bring the channel to ${total} sats, more than its capacity of ${this.terms.capacity} (${this.terms.capacity - base.cumulative} left)`, { hint: 'pay less, or open another channel; nothing was paid' });
    }
    let acked = base.seq;
    let failure: unknown = null;
    let waiter: (() => void) | null = null;
    // Signed states are held only while unacknowledged, so a run of a million payments holds
    // no more than the window: memory stays flat and the garbage collector has little to copy.
    const sentAt = onAck ? new Float64Array(items.length) : null;
    const inFlight = new Array<PaymentState | undefined>(PAY_WINDOW);
    let newest = base;
    let sent = 0;
    const wake = () => {
      const w = waiter;
      waiter = null;
      w?.();
    };
    const reader = (async () => {
      try {
        while (acked < base.seq + items.length) {
          const m = await next(this.it);
          const ack = expectType(m, 'ack');
          if (ack.seq <= acked || ack.seq > base.seq + sent) throw new SwarmpayError('PEER_PROTOCOL', `the payee acknowledged sequence ${ack.seq} out of order (${acked} acknowledged, ${base.seq + sent} sent)`);
          if (onAck && sentAt) {
            const now = performance.now();
            for (let s = acked + 1; s <= ack.seq; s++) onAck(s, now - sentAt[s - base.seq - 1]!);
          }
          newest = inFlight[(ack.seq - base.seq - 1) % PAY_WINDOW]!;
          for (let s = acked + 1; s <= ack.seq; s++) inFlight[(s - base.seq - 1) % PAY_WINDOW] = undefined;
          acked = ack.seq;
          wake();
        }
      } catch (e) {
        failure = e;
        wake();
      }
    })();

    let cumulative = base.cumulative;
    for (let i = 0; i < items.length && failure === null; i++) {
      if (pace !== undefined) {
        const due = start + BigInt(Math.floor((i / pace) * 1e9));
        const ahead = Number(due - process.hrtime.bigint()) / 1e6;
        if (ahead >= 1) await new Promise((r) => setTimeout(r, ahead));
      }
      cumulative += items[i]!.sats;
      const seq = base.seq + i + 1;
      const sig = signState(this.hasher.sighash(cumulative), this.priv).toString('hex');
      inFlight[i % PAY_WINDOW] = { seq, cumulative, sig };
      sent++;
      if (sentAt) sentAt[i] = performance.now();
      this.link.send(encodeMessage({ t: 'pay', id: this.rec.id, seq, cumulative, sig, pid: items[i]!.pid }));
      while (seq - acked >= PAY_WINDOW && failure === null) await new Promise<void>((r) => (waiter = r));
      // Sends are written when the loop yields: a turn every few keeps each payment's wait
      // for the wire short, and lets acknowledgements in.
      if (i % SEND_YIELD_EVERY === SEND_YIELD_EVERY - 1) await new Promise((r) => setImmediate(r));
    }
    const last = base.seq + sent;
    while (acked < last && failure === null) await new Promise<void>((r) => (waiter = r));
    if (failure === null && acked >= base.seq + items.length) await reader;
    this.state = newest;
    const result: PayResult = {
      acked: this.state,
      // Only what was sent: what never left is plainly not paid, and a batch run again pays it.
      payments: items.slice(0, sent).map((it, i) => ({ seq: base.seq + i + 1, sats: it.sats, pid: it.pid, acked: base.seq + i + 1 <= acked })),
      seconds: Number(process.hrtime.bigint() - start) / 1e9,
    };
    if (failure !== null) result.error = failure;
    return result;
  }

  /** Ends the connection (the channel stays open). */
  disconnect(): Promise<void> {
    return this.link.close();
  }

  /** Asks the payee to close cooperatively; returns the close txid. */
  async close(): Promise<string> {
    this.link.send(encodeMessage({ t: 'close', id: this.rec.id }));
    const m = expectType(await next(this.it), 'closed');
    await saveChannel(this.ctx.session, { ...getChannel(this.ctx.session, this.rec.id), status: 'closing', closeTxid: m.txid }, true);
    return m.txid;
  }
}

/** Spends the whole channel output back to the wallet once the expiry height is reached. */
export async function refundChannel(ctx: WalletContext, id: string, feeRate: bigint): Promise<{ txid: string; fee: bigint }> {
  const rec = getChannel(ctx.session, id);
  if (rec.role !== 'payer') throw new SwarmpayError('CHANNEL_STATE', `channel ${id} is paid to this wallet; only its payer can refund it`);
  if (rec.status === 'refunded') return { txid: rec.refundTxid!, fee: 0n };
  const tip = await ctx.chain.tipHeight();
  if (tip < rec.terms.expiry) {
    throw new SwarmpayError('CHANNEL_STATE', `channel ${id} expires at height ${rec.terms.expiry}; the tip is ${tip}`, { hint: `a refund is possible in ${rec.terms.expiry - tip} blocks`, details: { expiry: rec.terms.expiry, tip } });
  }
  const to = addressToScript((await receiveAddress(ctx.chain, ctx.networkDir, ctx.network)).address, ctx.network);
  const tx = refundTx(termsOf(rec), fundingOf(rec), to, feeRate, contractKey(ctx.seed, ctx.network, CHANNEL_CHAIN, rec.keyIndex).priv);
  await broadcastOnce(ctx.chain, tx.hex, tx.txid);
  await saveChannel(ctx.session, { ...rec, status: 'refunded', refundTxid: tx.txid }, true);
  return { txid: tx.txid, fee: tx.fee };
}
