/**
 * Every wait on a transaction goes through `waitForTx`: the txid is told before the wait
 * starts, so that a wait cut short (Ctrl-C, a closed terminal) still named what is out, and
 * a wait that outlasts its time says that the transaction stands and what to run next.
 */
import { SwarmpayError, isSwarmpayError } from '../errors.js';

/** How long a wait lasts unless told otherwise: an hour, six blocks on average. */
export const DEFAULT_WAIT_MS = 3_600_000;

/** What every wait takes besides its own progress. */
export interface WaitHooks {
  /** Give up after this many milliseconds (TIMEOUT, naming the txid); default DEFAULT_WAIT_MS. */
  timeoutMs?: number;
  /** The txid of the transaction waited on, told once before the wait begins: it is broadcast already. */
  onBroadcast?: (txid: string) => void;
}

/** What a timed-out wait leaves: what still stands, and what to run to wait again. */
interface TimedOut {
  stands: string;
  hint: string;
}

/**
 * Runs `wait` (handed the milliseconds it has) on the transaction `txid`. Its TIMEOUT must
 * name `txid` in its details: a node that stops answering is a TIMEOUT too, and is not this.
 */
export async function waitForTx<T>(txid: string, o: WaitHooks, timedOut: TimedOut, wait: (timeoutMs: number) => Promise<T>): Promise<T> {
  const timeoutMs = o.timeoutMs ?? DEFAULT_WAIT_MS;
  o.onBroadcast?.(txid);
  try {
    return await wait(timeoutMs);
  } catch (e) {
    if (!isSwarmpayError(e, 'TIMEOUT') || e.details?.txid !== txid) throw e;
    throw new SwarmpayError('TIMEOUT', `${e.message}: ${timedOut.stands}`, { hint: timedOut.hint, details: { ...e.details, timeoutMs } });
  }
}
