/** `--timeout <seconds>`, which every `--wait` takes, and what every wait prints before it starts: the txid it waits on. */
import { Option } from 'commander';
import { SwarmpayError } from '../errors.js';
import { DEFAULT_WAIT_MS, type WaitHooks } from '../api/wait.js';
import type { Context } from './context.js';
import { parseCount } from './args.js';

/** A month: longer is a wait no one is watching. */
const MAX_TIMEOUT_S = 30 * 86_400;

export function timeoutOption(): Option {
  return new Option('--timeout <seconds>', `with --wait: give up after this many seconds (TIMEOUT, exit 4; what was broadcast stays broadcast) (default ${DEFAULT_WAIT_MS / 1000})`);
}

/**
 * The library's wait hooks for a command run with `wait`: the txid goes to stderr (with
 * --json too) before the wait starts, so that a wait cut short still named it.
 */
export function waitHooks(ctx: Context, o: { wait?: unknown; timeout?: string }, waitingOn: (txid: string) => string): WaitHooks {
  if (o.timeout === undefined) return { onBroadcast: (txid) => ctx.out.note(waitingOn(txid)) };
  if (o.wait === undefined || o.wait === false) throw new SwarmpayError('USAGE', '--timeout is how long --wait waits: give --wait too, or no --timeout');
  return { timeoutMs: parseCount(o.timeout, '--timeout', 1, MAX_TIMEOUT_S) * 1000, onBroadcast: (txid) => ctx.out.note(waitingOn(txid)) };
}
