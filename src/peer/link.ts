/**
 * The peer link: a Noise XX handshake over any byte stream, then encrypted, framed
 * messages (src/peer/session.ts). Peers are known by their static X25519 keys; the
 * transports (src/peer/transports.ts) only make the byte stream.
 */
import { Duplex } from 'node:stream';
import { SwarmpayError } from '../errors.js';
import { frameBuffer, HEADER_LEN } from './frames.js';
import { INBOX_BYTES } from './inbox.js';
import { SEND_QUEUE_BYTES } from './limits.js';
import { KEY_LEN, type StaticKey } from './keys.js';
import { HandshakeState, type Role } from './noise.js';
import { Session } from './session.js';
import { aboutPeer, FrameStream, type ByteStream, type FrameSink } from './wire.js';

export type { ByteStream } from './wire.js';

export interface LinkOptions {
  /** Refuse a peer whose static key is not this one (32 raw bytes). */
  peerKey?: Uint8Array;
  /** Default 10 s. */
  handshakeTimeoutMs?: number;
  /** Close the link when nothing arrives for this long. Default 120 s; 0 = never. */
  idleTimeoutMs?: number;
  /** The largest frame either side may send, tag included. Default 64 KiB. */
  maxFrame?: number;
  /** Bytes of messages held for a reader that falls behind before the input is paused. Default 1 MiB. */
  inboxBytes?: number;
  /** Bytes that may wait for a peer that does not read what is sent to it; past them the link fails. Default 4 MiB. */
  sendQueueBytes?: number;
}

export interface PeerLink {
  /** The peer's static public key, authenticated by the handshake. */
  readonly remoteKey: Buffer;
  /**
   * Encrypts and frames one message (1 byte to maxFrame - 16); everything sent in one tick
   * leaves in one write. A peer that leaves more than `sendQueueBytes` unread fails the link
   * (PEER_TIMEOUT): a sender of much should await drained() as it goes.
   */
  send(message: Uint8Array): void;
  /** Resolves once what waits for the peer is down to a few hundred KiB (or the link is over). */
  drained(): Promise<void>;
  /** The peer's messages in order; ends when the peer closes the link, throws a SwarmpayError when anything goes wrong. One reader. */
  messages(): AsyncIterable<Buffer>;
  /** Sends what is pending and a close notice, ends our side, waits (briefly) for the peer's end. */
  close(): Promise<void>;
  /** Resolves when the link is closed cleanly by either side, rejects with the reason when it failed. */
  readonly closed: Promise<void>;
}

export { SEND_QUEUE_BYTES };

/** Binds the handshake to this protocol and version: a peer speaking anything else fails it. */
const PROLOGUE = Buffer.from('swarmpay/1');
/** Handshake message 2 must fit: e (32), s encrypted (32 + 16), the empty payload's tag (16). */
const MIN_FRAME = 96;
/** What a 4-byte length can say. */
const MAX_FRAME = 0xffffffff;

export function linkOptions(opts: LinkOptions): Required<Omit<LinkOptions, 'peerKey'>> {
  return { handshakeTimeoutMs: opts.handshakeTimeoutMs ?? 10_000, idleTimeoutMs: opts.idleTimeoutMs ?? 120_000, maxFrame: opts.maxFrame ?? 64 * 1024, inboxBytes: opts.inboxBytes ?? INBOX_BYTES, sendQueueBytes: opts.sendQueueBytes ?? SEND_QUEUE_BYTES };
}

export function handshake(stream: Duplex | ByteStream, role: Role, key: StaticKey, opts: LinkOptions = {}): Promise<PeerLink> {
  if (opts.peerKey && opts.peerKey.length !== KEY_LEN) {
    return Promise.reject(new SwarmpayError('USAGE', `a pinned peer key is ${KEY_LEN} bytes, not ${opts.peerKey.length}`));
  }
  if (opts.maxFrame !== undefined && !(opts.maxFrame >= MIN_FRAME && opts.maxFrame <= MAX_FRAME)) {
    return Promise.reject(new SwarmpayError('USAGE', `maxFrame must be ${MIN_FRAME} to ${MAX_FRAME} bytes, not ${opts.maxFrame}`));
  }
  return new Handshake(stream instanceof Duplex ? { readable: stream, writable: stream } : stream, role, key, opts).result;
}

/** Drives the three XX messages, each one frame with an empty payload, then hands the stream to a Session. */
class Handshake implements FrameSink {
  readonly result: Promise<PeerLink>;
  private settle!: { resolve: (link: PeerLink) => void; reject: (e: SwarmpayError) => void };
  private readonly wire: FrameStream;
  private readonly hs: HandshakeState;
  private readonly pin: Buffer | null;
  private readonly opts: ReturnType<typeof linkOptions>;
  private readonly timer: NodeJS.Timeout;

  constructor(stream: ByteStream, role: Role, key: StaticKey, opts: LinkOptions) {
    this.result = new Promise((resolve, reject) => (this.settle = { resolve, reject }));
    this.opts = linkOptions(opts);
    this.pin = opts.peerKey ? Buffer.from(opts.peerKey) : null;
    this.hs = new HandshakeState(role, key, PROLOGUE);
    this.wire = new FrameStream(stream, this.opts.maxFrame, this);
    const ms = this.opts.handshakeTimeoutMs;
    this.timer = setTimeout(() => {
      this.wire.fail(new SwarmpayError('PEER_TIMEOUT', `did not complete the handshake within ${ms / 1000} s`, {
        hint: 'check that the address or command leads to a swarmpay peer that is not stuck',
        details: { phase: 'handshake', timeoutMs: ms },
      }));
    }, ms);
    if (role === 'initiator') this.writeNext();
  }

  frame(body: Buffer): void {
    if (this.hs.readMessage(body).length > 0) throw new SwarmpayError('PEER_PROTOCOL', 'sent a handshake payload; swarmpay/1 handshakes carry none');
    this.checkPin();
    if (!this.hs.finished) this.writeNext();
    if (this.hs.finished) this.open();
  }

  ended(error: SwarmpayError | null): void {
    clearTimeout(this.timer);
    this.wire.destroy();
    this.settle.reject(aboutPeer(this.wire.describe, error ?? new SwarmpayError('PEER_UNREACHABLE', 'closed the connection during the handshake', {
      hint: 'the peer refused us (a pinned key on its side?) or is not a swarmpay peer',
    })));
  }

  private writeNext(): void {
    this.wire.write(withHeader(this.hs.writeMessage(Buffer.alloc(0))));
  }

  /** The remote static key is known (and authenticated) from message 2 for the initiator, 3 for the responder. */
  private checkPin(): void {
    const seen = this.hs.remoteStatic;
    if (!this.pin || !seen || seen.equals(this.pin)) return;
    throw new SwarmpayError('PEER_KEY_MISMATCH', `has static key ${seen.toString('hex')}, not the pinned key ${this.pin.toString('hex')}`, {
      hint: 'check --peer-key; if the peer really changed its key, confirm the new one with its operator',
      details: { expected: this.pin.toString('hex'), seen: seen.toString('hex') },
    });
  }

  private open(): void {
    clearTimeout(this.timer);
    const { send, receive } = this.hs.split();
    // remoteStatic is set once the handshake is finished: XX always sends both static keys.
    this.settle.resolve(new Session(this.wire, send, receive, this.hs.remoteStatic!, this.opts));
  }
}

function withHeader(message: Buffer): Buffer {
  const frame = frameBuffer(message.length);
  message.copy(frame, HEADER_LEN);
  return frame;
}
