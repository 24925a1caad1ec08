/**
 * Decrypted messages waiting for the one reader of a link. When the reader falls behind,
 * the input is paused, so a fast peer fills the kernel's buffers, not our heap. The bound
 * is in bytes, not messages: 4,096 messages of 64 KiB were 256 MiB per link.
 */
import { SwarmpayError } from '../errors.js';

/** Bytes a link may hold for its reader before its input is paused (it resumes at half). */
export const INBOX_BYTES = 1024 * 1024;
/**
 * What a message costs beyond its bytes (its Buffer object and its place in the queue):
 * counted too, so that a peer sending one-byte messages is bounded as well (8,192 of them).
 */
const MESSAGE_OVERHEAD = 128;

interface Flow {
  pause(): void;
  resume(): void;
}

export class Inbox implements AsyncIterable<Buffer> {
  private readonly queue: Buffer[] = [];
  private waiter: { resolve: (r: IteratorResult<Buffer>) => void; reject: (e: SwarmpayError) => void } | null = null;
  private ended = false;
  private error: SwarmpayError | null = null;
  private paused = false;
  private bytes = 0;

  constructor(
    private readonly flow: Flow,
    private readonly maxBytes = INBOX_BYTES,
  ) {}

  push(message: Buffer): void {
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = null;
      w.resolve({ value: message, done: false });
      return;
    }
    this.queue.push(message);
    this.bytes += message.length + MESSAGE_OVERHEAD;
    if (!this.paused && this.bytes >= this.maxBytes) {
      this.paused = true;
      this.flow.pause();
    }
  }

  /** No more messages: the reader gets those queued, then the end, or `error`. */
  end(error?: SwarmpayError): void {
    if (this.ended) return;
    this.ended = true;
    this.error = error ?? null;
    const w = this.waiter;
    this.waiter = null;
    if (w && error) w.reject(error);
    else w?.resolve({ value: undefined, done: true });
  }

  // Leaving a for-await loop early does not close the link: the protocol above may read its next message in another loop.
  [Symbol.asyncIterator](): AsyncIterator<Buffer> {
    return { next: () => this.next(), return: async () => ({ value: undefined, done: true }) };
  }

  private next(): Promise<IteratorResult<Buffer>> {
    const message = this.queue.shift();
    if (message !== undefined) {
      this.bytes -= message.length + MESSAGE_OVERHEAD;
      if (this.paused && this.bytes <= this.maxBytes / 2) {
        this.paused = false;
        this.flow.resume();
      }
      return Promise.resolve({ value: message, done: false });
    }
    if (this.error) return Promise.reject(this.error);
    if (this.ended) return Promise.resolve({ value: undefined, done: true });
    if (this.waiter) return Promise.reject(new SwarmpayError('INTERNAL', 'two readers of one peer link at once'));
    return new Promise((resolve, reject) => (this.waiter = { resolve, reject }));
  }
}
