/**
 * What the peer-to-peer commands (channel, escrow) share: the unlocked wallet, the peer
 * options (--peer HOST:PORT or --peer-cmd, --peer-key), and the server loop of `serve`
 * (TCP or stdio, until SIGINT/SIGTERM, with a periodic task).
 */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { SwarmpayError } from '../errors.js';
import { DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_HANDSHAKES, listenTcp, stdioPeer, type ServerLimits } from '../peer/transports.js';
import { SEND_QUEUE_BYTES, type LinkOptions, type PeerLink } from '../peer/link.js';
import { INBOX_BYTES } from '../peer/inbox.js';
import type { StaticKey } from '../peer/keys.js';
import type { PeerAddress } from '../peer/connect.js';
import { openContracts, type ContractContext } from '../wallet/contract-wallet.js';
import type { PeerLocation, Server } from '../api/server.js';
import type { Context } from './context.js';
import { parseCount } from './args.js';

/** HOST:PORT; port 0 (any free port) only where we listen. */
export function parseHostPort(text: string, what: string, listen = false): { host: string; port: number } {
  const m = /^(.+):(\d{1,5})$/.exec(text);
  if (!m || Number(m[2]) < (listen ? 0 : 1) || Number(m[2]) > 65535) throw new SwarmpayError('USAGE', `${what} "${text}" is not HOST:PORT`, { hint: 'for example 127.0.0.1:9735' });
  return { host: m[1]!, port: Number(m[2]) };
}

/** The unlocked wallet and the chain. */
export async function unlockedContext(ctx: Context, passphraseFile: string | undefined): Promise<ContractContext> {
  return openContracts(ctx.networkDir, ctx.network, ctx.unlocker(passphraseFile), ctx.env.chain());
}

export function peerOf(opts: { peer?: string; peerCmd?: string }): PeerAddress {
  if ((opts.peer === undefined) === (opts.peerCmd === undefined)) throw new SwarmpayError('USAGE', 'give exactly one of --peer HOST:PORT and --peer-cmd "CMD"');
  return opts.peer !== undefined ? { kind: 'tcp', ...parseHostPort(opts.peer, '--peer') } : { kind: 'cmd', command: opts.peerCmd! };
}

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

/** Descriptors kept for the server's own work (keystore, journal, node, TPM, log) whatever the peers do. */
const RESERVED_DESCRIPTORS = 64;

/**
 * The connections this process can hold and still open its own files: the soft limit on
 * open files (`ulimit -n`, read from /proc where there is one) less a reserve.
 */
function connectionBudget(): number | null {
  try {
    const m = /^Max open files\s+(\d+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    return m ? Number(m[1]) - RESERVED_DESCRIPTORS : null;
  } catch {
    return null;
  }
}

export interface ServerOptions {
  listen: string;
  stdio: boolean;
  key: StaticKey;
  limits: LinkOptions & ServerLimits;
  /** Serves one peer; resolves when that peer is done. */
  serve: (link: PeerLink) => Promise<void>;
  /** Runs every `pollMs` while serving (closing channels, claiming escrows). */
  tick: () => Promise<unknown>;
  pollMs: number;
  log: (msg: string) => void;
  what: string;
}

/** Serves until SIGINT/SIGTERM (or, with --stdio, until the one peer is done), then waits for every peer being served. */
export async function runServer(ctx: Context, o: ServerOptions): Promise<void> {
  const serving = new Set<Promise<void>>();
  // A peer's failure is logged; it never ends the server, nor the shutdown's wait for the others.
  const track = (served: Promise<void>) => {
    const p = served.catch((e: unknown) => o.log(`${(e as Error).message}`));
    serving.add(p);
    void p.finally(() => serving.delete(p));
  };
  let stop!: () => void;
  const stopped = new Promise<void>((r) => (stop = r));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  // A tick slower than the poll (a slow node) is not run twice at once: the next waits its turn.
  let ticking = false;
  const timer = setInterval(() => {
    if (ticking) return;
    ticking = true;
    o.tick()
      .catch((e: unknown) => o.log(`${(e as Error).message}`))
      .finally(() => (ticking = false));
  }, o.pollMs);
  try {
    if (o.stdio) {
      o.log(`serving one ${o.what} on stdin/stdout; key ${o.key.publicKey.toString('hex')}`);
      const link = await stdioPeer(o.key, o.limits);
      await Promise.race([o.serve(link), stopped]);
    } else {
      const { host, port } = parseHostPort(o.listen, '--listen', true);
      const budget = connectionBudget();
      const wanted = o.limits.maxConnections ?? DEFAULT_MAX_CONNECTIONS;
      const maxConnections = budget === null ? wanted : Math.max(1, Math.min(wanted, budget));
      if (maxConnections < wanted) o.log(`at most ${maxConnections} connections, not ${wanted}: the rest of this process's ${budget! + RESERVED_DESCRIPTORS} file descriptors (ulimit -n) are kept for its own files`);
      const server = await listenTcp(host, port, o.key, (link) => track(o.serve(link)), { ...o.limits, maxConnections, onError: (e) => o.log(`${e.code}: ${e.message}`) });
      const where = { listening: `${host}:${server.port}`, peerKey: o.key.publicKey.toString('hex') };
      if (ctx.out.json) ctx.out.jsonLine(where);
      else ctx.out.result(where, `listening on ${where.listening}; key ${where.peerKey}`);
      await stopped;
      await server.close();
    }
  } finally {
    clearInterval(timer);
    process.removeListener('SIGINT', stop);
    process.removeListener('SIGTERM', stop);
    await Promise.all(serving);
  }
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
