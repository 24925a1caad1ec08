/**
 * What the peer-to-peer commands (channel, escrow, tpm enroll) share: the peer options
 * (--peer HOST:PORT or --peer-cmd, --peer-key), the server limits as flags, and running a
 * server until SIGINT/SIGTERM.
 */
import type { Command } from 'commander';
import { SwarmpayError } from '../errors.js';
import type { ServerLimits } from '../peer/transports.js';
import type { LinkOptions } from '../peer/link.js';
import { DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_HANDSHAKES, SEND_QUEUE_BYTES } from '../peer/limits.js';
import { INBOX_BYTES } from '../peer/inbox.js';
import type { PeerLocation, Server } from '../api/server.js';
import type { Context } from './context.js';
import { parseCount } from './args.js';

/** --peer HOST:PORT or --peer-cmd CMD, exactly one, as the library takes a peer. */
export function peerLocation(opts: { peer?: string; peerCmd?: string }): PeerLocation {
  if (opts.peer !== undefined && opts.peerCmd === undefined) return opts.peer;
  if (opts.peerCmd !== undefined && opts.peer === undefined) return { command: opts.peerCmd };
  throw new SwarmpayError('USAGE', 'give exactly one of --peer HOST:PORT and --peer-cmd "CMD"');
}

/** The limits every server takes as flags (`channel serve`, `escrow serve`). */
export function withServerLimits(cmd: Command): Command {
  return cmd
    .option('--max-connections <n>', 'peers connected at once, handshakes included; more are closed at once', String(DEFAULT_MAX_CONNECTIONS))
    .option('--max-handshakes <n>', 'handshakes run at once; later connections wait their turn', String(DEFAULT_MAX_HANDSHAKES))
    .option('--handshake-timeout <seconds>', 'a connection must finish its handshake within this', '10')
    .option('--idle-timeout <seconds>', 'close a link that brings no whole frame for this long', '120')
    .option('--link-buffer <bytes>', 'bytes received and not yet handled that one link may hold; past it the link is not read until half is handled', String(INBOX_BYTES))
    .option('--send-queue <bytes>', 'bytes that may wait for a peer that does not read; past it the peer is dropped', String(SEND_QUEUE_BYTES));
}

export interface LimitFlags {
  maxConnections: string;
  maxHandshakes: string;
  handshakeTimeout: string;
  idleTimeout: string;
  linkBuffer: string;
  sendQueue: string;
}

/** Room for one frame of the largest size and its bookkeeping: less could not hold a single message. */
const MIN_LINK_BYTES = 128 * 1024;

export function serverLimits(o: LimitFlags): LinkOptions & ServerLimits {
  return {
    maxConnections: parseCount(o.maxConnections, '--max-connections', 1, 100_000),
    maxHandshakes: parseCount(o.maxHandshakes, '--max-handshakes', 1, 10_000),
    handshakeTimeoutMs: parseCount(o.handshakeTimeout, '--handshake-timeout', 1, 600) * 1000,
    idleTimeoutMs: parseCount(o.idleTimeout, '--idle-timeout', 1, 86_400) * 1000,
    inboxBytes: parseCount(o.linkBuffer, '--link-buffer', MIN_LINK_BYTES, 2 ** 30),
    sendQueueBytes: parseCount(o.sendQueue, '--send-queue', MIN_LINK_BYTES, 2 ** 30),
  };
}

/** Prints where a server listens, then runs it until SIGINT/SIGTERM (or, over stdio, until its one peer is done). */
export async function runUntilSignal(ctx: Context, server: Server): Promise<void> {
  if (server.listening !== null) {
    const where = { listening: server.listening, peerKey: server.peerKey };
    if (ctx.out.json) ctx.out.jsonLine(where);
    else ctx.out.result(where, `listening on ${where.listening}; key ${where.peerKey}`);
  }
  const stop = () => void server.stop();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    await server.done;
  } finally {
    process.removeListener('SIGINT', stop);
    process.removeListener('SIGTERM', stop);
  }
}

/** The log of a long-running command: timestamped lines on stderr. */
export function serverLog(msg: string): void {
  process.stderr.write(`${new Date().toISOString()} ${msg}\n`);
}
