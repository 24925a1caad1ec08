/**
 * The link's framing: a 4-byte big-endian length, then that many bytes. The decoder is
 * pure (bytes in, frames out) so the same code reads handshake and transport frames, and
 * bytes that follow the handshake in one read are not lost.
 */
import { SwarmpayError } from '../errors.js';

export const HEADER_LEN = 4;

/** A frame of `bodyLen` bytes with its header written; the caller fills the body from HEADER_LEN. */
export function frameBuffer(bodyLen: number): Buffer {
  const frame = Buffer.allocUnsafe(HEADER_LEN + bodyLen);
  frame.writeUInt32BE(bodyLen, 0);
  return frame;
}

export class FrameDecoder {
  private chunks: Buffer[] = [];
  private buffered = 0;
  /** Body length of the frame being read; -1 while its header is incomplete. */
  private need = -1;

  constructor(private readonly maxFrame: number) {}

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.buffered += chunk.length;
  }

  /**
   * The next complete frame body, or undefined until more bytes arrive. The length is
   * judged as soon as its header is in, so a huge claimed length fails before anything
   * of that size is buffered or allocated.
   */
  next(): Buffer | undefined {
    if (this.need < 0) {
      if (this.buffered < HEADER_LEN) return undefined;
      const len = this.take(HEADER_LEN).readUInt32BE(0);
      if (len === 0 || len > this.maxFrame) {
        throw new SwarmpayError('PEER_PROTOCOL', `sent a frame of ${len} bytes; frames are 1 to ${this.maxFrame} bytes`, {
          hint: 'check that the address or command leads to a swarmpay peer',
          details: { frameLength: len, maxFrame: this.maxFrame },
        });
      }
      this.need = len;
    }
    if (this.buffered < this.need) return undefined;
    const frame = this.take(this.need);
    this.need = -1;
    return frame;
  }

  /** True when a frame has begun and not ended: at the end of the stream, that frame was cut. */
  get midFrame(): boolean {
    return this.need >= 0 || this.buffered > 0;
  }

  /** The first n buffered bytes; a view into the chunk when one holds them all (the common case), else one copy. */
  private take(n: number): Buffer {
    this.buffered -= n;
    const first = this.chunks[0];
    if (first.length >= n) {
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
      return first.subarray(0, n);
    }
    const out = Buffer.allocUnsafe(n);
    for (let at = 0; at < n; ) {
      const c = this.chunks[0];
      const k = Math.min(c.length, n - at);
      c.copy(out, at, 0, k);
      at += k;
      if (k === c.length) this.chunks.shift();
      else this.chunks[0] = c.subarray(k);
    }
    return out;
  }
}
