/**
 * What the peer-to-peer commands (channel, escrow) share: the unlocked wallet, the peer
 * options (--peer HOST:PORT or --peer-cmd, --peer-key), and the server loop of `serve`
 * (TCP or stdio, until SIGINT/SIGTERM, with a periodic task).
 */
import { SwarmpayError } from '../errors.js';
import { listenTcp, stdioPeer } from '../peer/transports.js';
import type { PeerLink } from '../peer/link.js';
import type { StaticKey } from '../peer/keys.js';
import type { PeerAddress } from '../peer/connect.js';
import { unlockWallet, type WalletContext } from '../wallet/wallet.js';
import type { Context } from './context.js';

/** HOST:PORT; port 0 (any free port) only where we listen. */
export function parseHostPort(text: string, what: string, listen = false): { host: string; port: number } {
  const m = /^(.+):(\d{1,5})$/.exec(text);
  if (!m || Number(m[2]) < (listen ? 0 : 1) || Number(m[2]) > 65535) throw new SwarmpayError('USAGE', `${what} "${text}" is not HOST:PORT`, { hint: 'for example 127.0.0.1:9735' });
  return { host: m[1]!, port: Number(m[2]) };
}

/** The unlocked wallet and the chain. */
export async function unlockedContext(ctx: Context, passphraseFile: string | undefined): Promise<WalletContext> {
  const { session, seed } = await unlockWallet(ctx.networkDir, ctx.network, ctx.unlocker(passphraseFile), { checkpoint: false });
  return { session, seed, network: ctx.network, networkDir: ctx.networkDir, chain: ctx.chain() };
}

export function peerOf(opts: { peer?: string; peerCmd?: string }): PeerAddress {
  if ((opts.peer === undefined) === (opts.peerCmd === undefined)) throw new SwarmpayError('USAGE', 'give exactly one of --peer HOST:PORT and --peer-cmd "CMD"');
  return opts.peer !== undefined ? { kind: 'tcp', ...parseHostPort(opts.peer, '--peer') } : { kind: 'cmd', command: opts.peerCmd! };
}

export interface ServerOptions {
  listen: string;
  stdio: boolean;
  key: StaticKey;
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
      const link = await stdioPeer(o.key);
      await Promise.race([o.serve(link), stopped]);
    } else {
      const { host, port } = parseHostPort(o.listen, '--listen', true);
      const server = await listenTcp(host, port, o.key, (link) => track(o.serve(link)), { onError: (e) => o.log(`${e.code}: ${e.message}`) });
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

/** The log of a long-running command: timestamped lines on stderr. */
export function serverLog(msg: string): void {
  process.stderr.write(`${new Date().toISOString()} ${msg}\n`);
}
