/**
 * Payments on the wire (channel protocol version 2): a payment is a few bytes, not a
 * signature, and many travel in one frame of the link (which authenticates every frame to
 * the payer's key). A signed state, the payer's signature over the close for a cumulative
 * amount, travels in the same frames and covers every payment up to its sequence number.
 *
 *   frame   := 0x01, varint firstSeq, item*
 *   item    := 0x00 varint sats                         a payment
 *            | 0x01 varint sats, u8 n, n bytes id        a payment with a batch id
 *            | 0x02 varint seq, varint cumulative, 64 bytes signature (r || s)
 *
 * Payments take the sequence numbers firstSeq, firstSeq + 1, … in order. Varints are
 * unsigned LEB128 below 2^53 (every amount in sats is). Control messages stay JSON: a JSON
 * frame begins with "{", never with 0x01.
 */
import { ShapeError } from '../util/shape.js';

const PAYMENTS_FRAME = 0x01;
const PAYMENT = 0x00;
const PAYMENT_WITH_ID = 0x01;
const STATE = 0x02;
const SIG_BYTES = 64;
/** Batch ids: 1 to 64 printable ASCII characters (as in the JSON messages). */
export const MAX_ID_BYTES = 64;
/** The largest varint: 2^53 - 1 takes 8 bytes. */
const MAX_VARINT_BYTES = 8;
/** What one payment can take in a frame, at most: tag, amount, id length and id. */
const MAX_PAYMENT_BYTES = 1 + MAX_VARINT_BYTES + 1 + MAX_ID_BYTES;
/** What one signed state takes, at most. */
const MAX_STATE_BYTES = 1 + 2 * MAX_VARINT_BYTES + SIG_BYTES;

export function isPaymentsFrame(frame: Uint8Array): boolean {
  return frame[0] === PAYMENTS_FRAME;
}

/** Builds frames of payments and signed states, into one buffer reused frame after frame. */
export class PaymentsWriter {
  private readonly buf: Buffer;
  private at = 0;

  constructor(private readonly maxBytes: number) {
    this.buf = Buffer.allocUnsafe(maxBytes);
  }

  /** Whether the frame holds nothing yet. */
  get empty(): boolean {
    return this.at === 0;
  }

  /** Whether a payment and a state still fit: the caller sends the frame first if not. */
  get roomy(): boolean {
    return this.at + MAX_PAYMENT_BYTES + MAX_STATE_BYTES <= this.maxBytes;
  }

  /** A payment; `seq` is the frame's first sequence number when the frame is empty. */
  payment(seq: number, sats: number, pid: string | null): void {
    this.open(seq);
    if (pid === null) {
      this.buf[this.at++] = PAYMENT;
      this.varint(sats);
    } else {
      this.buf[this.at++] = PAYMENT_WITH_ID;
      this.varint(sats);
      this.buf[this.at++] = pid.length;
      this.at += this.buf.write(pid, this.at, 'latin1');
    }
  }

  /** A signed state; `nextSeq` is the sequence number the frame's first payment would take. */
  state(nextSeq: number, seq: number, cumulative: number, sig: Uint8Array): void {
    this.open(nextSeq);
    this.buf[this.at++] = STATE;
    this.varint(seq);
    this.varint(cumulative);
    this.buf.set(sig, this.at);
    this.at += SIG_BYTES;
  }

  /** The frame built so far (a copy: the buffer is reused), and a fresh one begun. */
  take(): Buffer {
    const frame = Buffer.from(this.buf.subarray(0, this.at));
    this.at = 0;
    return frame;
  }

  private open(firstSeq: number): void {
    if (this.at > 0) return;
    this.buf[this.at++] = PAYMENTS_FRAME;
    this.varint(firstSeq);
  }

  private varint(n: number): void {
    while (n >= 0x80) {
      this.buf[this.at++] = (n % 0x80) | 0x80;
      n = Math.floor(n / 0x80);
    }
    this.buf[this.at++] = n;
  }
}

/** Where a frame's items go, in order. */
export interface PaymentsSink {
  payment(seq: number, sats: number, pid: string | null): void;
  state(seq: number, cumulative: number, sig: Buffer): void;
}

/** Reads one payments frame into `sink`; anything malformed is a ShapeError (the caller's PEER_PROTOCOL). */
export function readPayments(frame: Buffer, sink: PaymentsSink): void {
  let at = 1;
  const varint = (what: string): number => {
    let n = 0;
    let scale = 1;
    for (let i = 0; i < MAX_VARINT_BYTES; i++) {
      const b = frame[at++];
      if (b === undefined) throw new ShapeError(`the payments frame ends inside ${what}`);
      n += (b & 0x7f) * scale;
      if (b < 0x80) {
        if (i > 0 && b === 0) throw new ShapeError(`${what} is not minimally encoded`);
        if (!Number.isSafeInteger(n)) throw new ShapeError(`${what} is too large`);
        return n;
      }
      scale *= 0x80;
    }
    throw new ShapeError(`${what} is longer than ${MAX_VARINT_BYTES} bytes`);
  };
  let seq = varint('the first sequence number');
  while (at < frame.length) {
    const tag = frame[at++];
    if (tag === PAYMENT || tag === PAYMENT_WITH_ID) {
      const sats = varint(`the amount of payment ${seq}`);
      if (sats === 0) throw new ShapeError(`payment ${seq} pays nothing`);
      let pid: string | null = null;
      if (tag === PAYMENT_WITH_ID) {
        const n = frame[at++];
        if (n === undefined || n === 0 || n > MAX_ID_BYTES || at + n > frame.length) throw new ShapeError(`the batch id of payment ${seq} is not 1 to ${MAX_ID_BYTES} bytes of the frame`);
        for (let i = at; i < at + n; i++) if (frame[i] < 0x21 || frame[i] > 0x7e) throw new ShapeError(`the batch id of payment ${seq} is not printable`);
        pid = frame.toString('latin1', at, at + n);
        at += n;
      }
      sink.payment(seq++, sats, pid);
    } else if (tag === STATE) {
      const s = varint('a signed state\'s sequence number');
      const cumulative = varint('a signed state\'s amount');
      if (at + SIG_BYTES > frame.length) throw new ShapeError('the payments frame ends inside a signature');
      sink.state(s, cumulative, frame.subarray(at, at + SIG_BYTES));
      at += SIG_BYTES;
    } else {
      throw new ShapeError(`unknown item ${String(tag)} in a payments frame`);
    }
  }
}
