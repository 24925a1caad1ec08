/** Payments frames (channel protocol v2) built and read by hand: for raw links and fake peers in tests. */
import { StateHasher, signState } from '../../src/bitcoin/channel.js';
import { PaymentsWriter, readPayments } from '../../src/channel/payments-codec.js';
import { outpointOf, termsOf, type ChannelRecord } from '../../src/channel/store.js';
import { CHANNEL_CHAIN, contractKey } from '../../src/wallet/hd.js';

/** The payer's signature over the close of `rec` for `cumulative` (its key is `keyIndex` of the payer's seed). */
export function stateSig(rec: ChannelRecord, payerSeed: Uint8Array, keyIndex: number, cumulative: bigint): Buffer {
  return signState(new StateHasher(termsOf(rec), outpointOf(rec)).sighash(cumulative), contractKey(payerSeed, 'regtest', CHANNEL_CHAIN, keyIndex).priv);
}

export type FrameItem = { sats: number; pid?: string } | { seq: number; cumulative: bigint; sig: Uint8Array };

/** One frame of payments (numbered from `firstSeq`) and states (any sequence, amount and signature), in this order. */
export function frameOf(firstSeq: number, items: FrameItem[]): Buffer {
  const w = new PaymentsWriter(64 * 1024);
  let next = firstSeq;
  for (const it of items) {
    if ('sats' in it) w.payment(next++, it.sats, it.pid ?? null);
    else w.state(next, it.seq, Number(it.cumulative), it.sig);
  }
  return w.take();
}

/** A frame of payments from `firstSeq`, and optionally a state after them. */
export function paymentsFrame(firstSeq: number, payments: { sats: number; pid?: string }[], state?: { seq: number; cumulative: bigint; sig: Uint8Array }): Buffer {
  return frameOf(firstSeq, state ? [...payments, state] : payments);
}

/** What a payments frame holds. */
export function readFrame(frame: Buffer): { payments: { seq: number; sats: number; pid: string | null }[]; states: { seq: number; cumulative: number }[] } {
  const out = { payments: [] as { seq: number; sats: number; pid: string | null }[], states: [] as { seq: number; cumulative: number }[] };
  readPayments(frame, { payment: (seq, sats, pid) => out.payments.push({ seq, sats, pid }), state: (seq, cumulative) => out.states.push({ seq, cumulative }) });
  return out;
}
