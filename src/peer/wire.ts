/**
 * Frames over any byte stream (a socket, a child's pipes, our own stdio): frames in, in
 * order, to one sink; frames out, coalesced per tick; and one report of how the input
 * ended. Knows nothing of handshakes or encryption.
 */
import type { Readable, Writable } from 'node:stream';
import { SwarmpayError } from '../errors.js';
import { FrameDecoder } from './frames.js';

/** A byte stream the link can run over; `describe` names the peer in errors ("peer 10.0.0.2:9735"). */
export interface ByteStream {
  readable: Readable;
  writable: Writable;
  describe?: string;
}

export interface FrameSink {
  /** A complete frame. Throwing here ends the stream with that error. */
  frame(body: Buffer): void;
  /** Called once: the input is over. null means it ended cleanly between two frames. */
  ended(error: SwarmpayError | null): void;
}

export class FrameStream {
  readonly describe: string;
  private readonly r: Readable;
  private readonly w: Writable;
  private readonly decoder: FrameDecoder;
  private corked = false;
  private over = false;

  constructor(
    stream: ByteStream,
    maxFrame: number,
    /** Who gets the frames: the handshake, then the open link. */
    public sink: FrameSink,
  ) {
    this.r = stream.readable;
    this.w = stream.writable;
    this.describe = stream.describe ?? 'the peer';
    this.decoder = new FrameDecoder(maxFrame);
    this.r.on('data', this.onData);
    this.r.on('end', () => this.stop(this.decoder.midFrame ? truncated() : null));
    // Listeners stay for the stream's life: an 'error' nobody listens to would crash the process.
    for (const s of new Set<Readable | Writable>([this.r, this.w])) {
      s.on('error', (e: NodeJS.ErrnoException) => this.stop(lost(e.code ?? e.message, e)));
      s.on('close', () => this.stop(lost('the connection closed')));
    }
  }

  write(frame: Buffer): void {
    // Everything sent in one tick leaves in one write: ~3,000 small messages a second would otherwise be as many syscalls.
    if (!this.corked) {
      this.corked = true;
      this.w.cork();
      process.nextTick(this.uncork);
    }
    this.w.write(frame);
  }

  /** Bytes written and not yet handed to the OS: what a peer that does not read leaves waiting. */
  get queued(): number {
    return this.w.writableLength;
  }

  /** Resolves once fewer than `bytes` wait to be handed to the OS, or the stream is over. */
  async drained(bytes: number): Promise<void> {
    // 'drain' comes only after a write found the buffer over its high-water mark.
    const below = Math.max(bytes, this.w.writableHighWaterMark);
    while (!this.over && this.w.writableLength > below) {
      await new Promise<void>((resolve) => {
        const done = () => {
          this.w.off('drain', done);
          this.w.off('close', done);
          resolve();
        };
        this.w.on('drain', done);
        this.w.on('close', done);
      });
    }
  }

  /** Sends what is pending, then ends our side; `flushed` runs once it is all handed to the OS (or the stream failed). */
  end(flushed: () => void): void {
    this.uncork();
    this.w.end(flushed);
  }

  /** Ends the input with this error, as if the stream had failed. */
  fail(error: SwarmpayError): void {
    this.stop(error);
  }

  destroy(): void {
    this.over = true;
    this.r.destroy();
    this.w.destroy();
  }

  pause(): void {
    this.r.pause();
  }

  resume(): void {
    this.r.resume();
  }

  private readonly uncork = (): void => {
    if (!this.corked) return;
    this.corked = false;
    this.w.uncork();
  };

  private readonly onData = (chunk: Buffer): void => {
    if (this.over) return;
    this.decoder.push(chunk);
    try {
      for (let f = this.decoder.next(); f !== undefined && !this.over; f = this.decoder.next()) this.sink.frame(f);
    } catch (e) {
      this.stop(e instanceof SwarmpayError ? e : new SwarmpayError('INTERNAL', `reading a frame failed: ${String(e)}`, { cause: e }));
    }
  };

  private stop(error: SwarmpayError | null): void {
    if (this.over) return;
    this.over = true;
    this.sink.ended(error);
  }
}

function truncated(): SwarmpayError {
  return new SwarmpayError('PEER_PROTOCOL', 'ended the connection in the middle of a frame (truncated frame)');
}

function lost(why: string, cause?: unknown): SwarmpayError {
  return new SwarmpayError('PEER_UNREACHABLE', `lost the connection: ${why}`, { hint: 'check the network and that the peer is still running', cause });
}

/** Names the peer in an error from below ("peer 10.0.0.2:9735: sent a frame of …"), keeping its code, hint and details. */
export function aboutPeer(describe: string, e: SwarmpayError): SwarmpayError {
  return new SwarmpayError(e.code, `${describe}: ${e.message}`, { hint: e.hint, details: e.details, cause: e });
}
