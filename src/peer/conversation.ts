/**
 * A protocol's side of a peer link: typed messages sent, and the next one expected by type
 * within a time limit. Channel, escrow and TPM enrollment each speak theirs through one,
 * so a step cannot read a raw frame, forget the peer's error message, or wait forever.
 */
import { SwarmpayError } from '../errors.js';
import type { PeerLink } from './link.js';

/** A protocol's messages: each has its type `t`; `error` is the peer's refusal. */
export interface Protocol<M extends { t: string }> {
  /** For messages: "channel", "escrow". */
  readonly name: string;
  /** Parses a frame; anything malformed throws PEER_PROTOCOL. */
  parse(frame: Buffer): M;
  encode(message: M): Uint8Array;
  /** The peer's refusal (an `error` message) as our error; null if `m` is not one. */
  refusal(m: M): SwarmpayError | null;
}

/** How long a step waits for the peer's next message unless told otherwise. */
const DEFAULT_STEP_TIMEOUT_MS = 60_000;

export interface ConversationOptions {
  /** Default for expect() and next(); 0 waits as long as the link's own idle timeout lets it. */
  timeoutMs?: number;
  /** Said with a peer that hangs up or falls silent: what the user may do now. */
  hint: string;
}

export class Conversation<M extends { t: string }> {
  private readonly frames: AsyncIterator<Buffer>;
  private readonly timeoutMs: number;

  constructor(
    readonly link: PeerLink,
    private readonly protocol: Protocol<M>,
    private readonly opts: ConversationOptions,
  ) {
    this.frames = link.messages()[Symbol.asyncIterator]();
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_STEP_TIMEOUT_MS;
  }

  get remoteKey(): Buffer {
    return this.link.remoteKey;
  }

  send(m: M): void {
    this.link.send(this.protocol.encode(m));
  }

  /** The next frame as it came (a protocol with binary frames beside its messages); null when the peer closed the link. */
  async nextFrame(timeoutMs = this.timeoutMs): Promise<Buffer | null> {
    const r = await this.within(this.frames.next(), timeoutMs);
    return r.done ? null : r.value;
  }

  /** The next message, whatever its type (a server's loop); null when the peer closed the link. */
  async next(timeoutMs = this.timeoutMs): Promise<M | null> {
    const frame = await this.nextFrame(timeoutMs);
    return frame === null ? null : this.protocol.parse(frame);
  }

  /** The next message, which must be of type `t` (or one of `t`); the peer's error becomes ours, a hang-up PEER_UNREACHABLE. */
  async expect<T extends M['t']>(t: T | readonly T[], timeoutMs = this.timeoutMs): Promise<Extract<M, { t: T }>> {
    const m = await this.next(timeoutMs);
    if (m === null) throw new SwarmpayError('PEER_UNREACHABLE', 'the peer closed the connection', { hint: this.opts.hint });
    const wanted: readonly string[] = typeof t === 'string' ? [t] : t;
    // m.t is one of the wanted types: Extract<M, { t: T }> is exactly the members with that t.
    if (wanted.includes(m.t)) return m as Extract<M, { t: T }>;
    const refused = this.protocol.refusal(m);
    if (refused !== null) throw refused;
    throw new SwarmpayError('PEER_PROTOCOL', `the peer sent "${m.t.slice(0, 32)}" where ${wanted.map((w) => `"${w}"`).join(' or ')} was expected`, { hint: 'the peer is not a compatible swarmpay, or not well; nothing was changed' });
  }

  close(): Promise<void> {
    return this.link.close();
  }

  /** A step that waits longer than `ms` fails the link: the peer is gone or stuck, and holding on helps nobody. */
  private async within<T>(p: Promise<T>, ms: number): Promise<T> {
    if (ms === 0) return p;
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const e = new SwarmpayError('PEER_TIMEOUT', `the ${this.protocol.name} peer sent nothing for ${ms / 1000} s`, { hint: this.opts.hint, details: { timeoutMs: ms } });
        reject(e);
        void this.link.close().catch(() => undefined);
      }, ms);
    });
    try {
      return await Promise.race([p, late]);
    } finally {
      clearTimeout(timer);
    }
  }
}
