/**
 * Decrypted messages waiting for the one reader of a link. When the reader falls behind,
 * the input is paused, so a fast peer fills the kernel's buffers, not our heap.
 */
import { SwarmpayError } from '../errors.js';

const HIGH_WATER = 4096;
const LOW_WATER = HIGH_WATER / 2;

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

  constructor(private readonly flow: Flow) {}

  push(message: Buffer): void {
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = null;
      w.resolve({ value: message, done: false });
      return;
    }
    this.queue.push(message);
    if (!this.paused && this.queue.length >= HIGH_WATER) {
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
      if (this.paused && this.queue.length <= LOW_WATER) {
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
