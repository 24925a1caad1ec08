/**
 * An open link: after the handshake, each message is one frame sealed by the sender's
 * CipherState. An empty message is the close notice (the idea of TLS's close_notify): a
 * stream that ends without one was cut, not closed, and the reader is told so.
 */
import { SwarmpayError } from '../errors.js';
import { frameBuffer, HEADER_LEN } from './frames.js';
import { Inbox } from './inbox.js';
import { TAG_LEN, type CipherState } from './noise.js';
import { aboutPeer, type FrameSink, type FrameStream } from './wire.js';

const EMPTY = Buffer.alloc(0);
/** What drained() lets wait: enough to keep a link busy, little enough that many links hold little. */
const DRAINED_BYTES = 256 * 1024;
/** Once our end is sent, how long the peer has to end its side before we cut the stream. */
const CLOSE_GRACE_MS = 5_000;

/**
 * A PeerLink once the handshake is done (link.ts hands it out as one, which checks that it
 * is one: naming the interface here would make link.ts and this file import each other).
 */
export class Session implements FrameSink {
  readonly closed: Promise<void>;
  private state: 'open' | 'closing' | 'done' = 'open';
  private closedBy: 'us' | 'peer' | null = null;
  private failure: SwarmpayError | null = null;
  private readonly inbox: Inbox;
  private idle: NodeJS.Timeout | null = null;
  private grace: NodeJS.Timeout | null = null;
  private inputOver = false;
  private outputFlushed = false;
  private settle!: { resolve: () => void; reject: (e: SwarmpayError) => void };

  constructor(
    private readonly wire: FrameStream,
    private readonly tx: CipherState,
    private readonly rx: CipherState,
    readonly remoteKey: Buffer,
    private readonly opts: { idleTimeoutMs: number; maxFrame: number; inboxBytes: number; sendQueueBytes: number },
  ) {
    this.closed = new Promise((resolve, reject) => (this.settle = { resolve, reject }));
    // Nobody has to await `closed`: its rejection also reaches the reader of messages().
    this.closed.catch(() => undefined);
    // While the inbox holds the input paused, a silent peer and a slow reader look alike: the idle timer waits too.
    this.inbox = new Inbox({
      pause: () => {
        wire.pause();
        this.disarmIdle();
      },
      resume: () => {
        wire.resume();
        if (this.state === 'open') this.armIdle();
      },
    }, opts.inboxBytes);
    this.armIdle();
    wire.sink = this;
  }

  send(message: Uint8Array): void {
    if (this.state !== 'open') {
      throw this.failure ?? new SwarmpayError('PEER_CLOSED', this.closedBy === 'peer' ? `${this.wire.describe} closed the link` : 'the peer link is closed');
    }
    const bodyLen = message.length + TAG_LEN;
    if (message.length === 0 || bodyLen > this.opts.maxFrame) {
      throw new SwarmpayError('INTERNAL', `a ${message.length}-byte message cannot be sent: messages are 1 to ${this.opts.maxFrame - TAG_LEN} bytes`);
    }
    const queued = this.wire.queued;
    if (queued + HEADER_LEN + bodyLen > this.opts.sendQueueBytes) {
      throw this.stall(`does not read what is sent to it: ${queued} bytes wait for it`, { phase: 'write', queuedBytes: queued, limitBytes: this.opts.sendQueueBytes });
    }
    this.seal(message, bodyLen);
  }

  /**
   * Waits, within the idle timeout, for the peer to take what was sent: a peer that takes
   * nothing for that long fails the link (PEER_TIMEOUT). The idle timer alone would not do,
   * as it stops while our own reader is behind, and a sender waiting here reads nothing.
   */
  async drained(): Promise<void> {
    const ms = this.opts.idleTimeoutMs;
    if (ms === 0) return this.wire.drained(DRAINED_BYTES);
    const timer = setTimeout(() => this.stall(`took nothing sent to it for ${ms / 1000} s`, { phase: 'write', timeoutMs: ms }), ms);
    try {
      await this.wire.drained(DRAINED_BYTES);
    } finally {
      clearTimeout(timer);
    }
  }

  messages(): AsyncIterable<Buffer> {
    return this.inbox;
  }

  /** Never rejects: a link that had failed is simply closed; `closed` keeps the reason. */
  async close(): Promise<void> {
    if (this.state === 'open') {
      this.closedBy = 'us';
      try {
        this.seal(EMPTY, TAG_LEN);
        this.shutDown();
      } catch {
        // The notice could not be sealed (nonces used up): the link has failed instead, and says so.
      }
    }
    return this.closed.catch(() => undefined);
  }

  frame(body: Buffer): void {
    // After a close notice, either way, whatever still arrives is of no interest.
    if (this.state !== 'open') return;
    const message = this.rx.decryptWithAd(EMPTY, body);
    // Only a whole authenticated frame shows the peer alive: a byte a second would otherwise hold a link forever.
    this.idle?.refresh();
    if (message.length > 0) {
      this.inbox.push(message);
    } else {
      this.closedBy = 'peer';
      this.shutDown();
    }
  }

  ended(error: SwarmpayError | null): void {
    if (this.state === 'closing') {
      // Once we are closing, the peer's end is the answer we wait for, clean or not.
      this.inputOver = true;
      if (error || this.outputFlushed) this.finish(null);
      return;
    }
    this.finish(error ?? new SwarmpayError('PEER_UNREACHABLE', 'ended the connection without closing the link', { hint: 'the peer went away (crashed, killed or cut off); reconnect' }));
  }

  private seal(message: Uint8Array, bodyLen: number): void {
    const frame = frameBuffer(bodyLen);
    try {
      this.tx.encryptInto(EMPTY, message, frame, HEADER_LEN);
    } catch (e) {
      const error = e instanceof SwarmpayError ? e : new SwarmpayError('INTERNAL', `encrypting a message failed: ${String(e)}`, { cause: e });
      this.wire.fail(error);
      throw this.failure ?? error;
    }
    this.wire.write(frame);
  }

  /** Both sides of a close: stop reading messages, send what is pending and end our side, then wait for the peer's end. */
  private shutDown(): void {
    this.state = 'closing';
    this.disarmIdle();
    this.inbox.end();
    // Whatever still arrives is dropped (frame() ignores it), but it must be read: a peer
    // blocked on sending it would never see our end, and we would wait out the grace.
    this.wire.resume();
    this.grace = setTimeout(() => this.finish(null), CLOSE_GRACE_MS);
    this.wire.end(() => {
      this.outputFlushed = true;
      if (this.inputOver) this.finish(null);
    });
  }

  private armIdle(): void {
    const ms = this.opts.idleTimeoutMs;
    if (ms === 0 || this.idle) return;
    this.idle = setTimeout(() => this.stall(`has sent nothing for ${ms / 1000} s`, { phase: 'idle', timeoutMs: ms }), ms);
  }

  /** Fails the link because the peer stalled, one way or the other; returns the failure to throw. */
  private stall(message: string, details: Record<string, number | string>): SwarmpayError {
    const error = new SwarmpayError('PEER_TIMEOUT', message, { hint: 'the peer or the network stalled; reconnect', details });
    this.wire.fail(error);
    return this.failure ?? error;
  }

  private disarmIdle(): void {
    if (this.idle) clearTimeout(this.idle);
    this.idle = null;
  }

  private finish(error: SwarmpayError | null): void {
    if (this.state === 'done') return;
    this.state = 'done';
    this.disarmIdle();
    if (this.grace) clearTimeout(this.grace);
    this.wire.destroy();
    if (error) {
      this.failure = aboutPeer(this.wire.describe, error);
      this.inbox.end(this.failure);
      this.settle.reject(this.failure);
    } else {
      this.inbox.end();
      this.settle.resolve();
    }
  }
}
