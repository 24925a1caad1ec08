/**
 * A protocol server (`channel serve`, `escrow serve`): peers over TCP, or one peer over
 * stdin/stdout, each served as it comes, and a periodic task (closes to make, claims to
 * send) beside them, until stop().
 */
import { readFileSync } from 'node:fs';
import { SwarmpayError } from '../errors.js';
import { DEFAULT_MAX_CONNECTIONS, listenTcp, stdioPeer, type ServerLimits } from '../peer/transports.js';
import type { LinkOptions, PeerLink } from '../peer/link.js';
import type { StaticKey } from '../peer/keys.js';
import type { PeerAddress } from '../peer/connect.js';

/** Where a server listens: TCP (port 0 for any free one), or one peer on this process's stdin/stdout (for --peer-cmd). */
export type Listen = { tcp: string } | { stdio: true };

export interface ServerOptions {
  listen: Listen;
  limits?: LinkOptions & ServerLimits;
  /** How often the periodic task runs, ms. */
  pollMs?: number;
  /** The server's log: one line per event (a peer's failure, a close made). Default: none. */
  log?: (msg: string) => void;
}

export interface Server {
  /** The TCP port listened on; null for stdio. */
  readonly port: number | null;
  /** HOST:PORT listened on; null for stdio. */
  readonly listening: string | null;
  /** The server's static key, hex: what peers pin with --peer-key. */
  readonly peerKey: string;
  /** Resolves when the server is over: stop() was called, or (stdio) its one peer is done. */
  readonly done: Promise<void>;
  /** Stops taking peers, waits for those being served and the running task. */
  stop(): Promise<void>;
}

export interface ServeParts {
  key: StaticKey;
  /** Serves one peer; resolves when that peer is done. */
  serve: (link: PeerLink) => Promise<void>;
  /** Runs every pollMs while serving. */
  tick: () => Promise<unknown>;
  /** Runs once the last peer is done (a payee's journal closed, a last claim made). */
  shutdown: () => Promise<void>;
}

/** HOST:PORT; port 0 (any free port) only where we listen. */
function parseHostPort(text: string, what: string, listen = false): { host: string; port: number } {
  const m = /^(.+):(\d{1,5})$/.exec(text);
  if (!m || Number(m[2]) < (listen ? 0 : 1) || Number(m[2]) > 65535) throw new SwarmpayError('USAGE', `${what} "${text}" is not HOST:PORT`, { hint: 'for example 127.0.0.1:9735' });
  return { host: m[1] ?? '', port: Number(m[2]) };
}

/** Where a peer is, as a caller names it: HOST:PORT, or a command speaking on its stdin/stdout (as --peer-cmd). One helper for every protocol. */
export type PeerLocation = string | { command: string };

export function peerAddress(peer: PeerLocation): PeerAddress {
  if (typeof peer !== 'string') return { kind: 'cmd', command: peer.command };
  return { kind: 'tcp', ...parseHostPort(peer, '--peer') };
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

export async function startServer(parts: ServeParts, o: ServerOptions): Promise<Server> {
  const log = o.log ?? (() => undefined);
  const limits = o.limits ?? {};
  const serving = new Set<Promise<void>>();
  // A peer's failure is logged; it never ends the server, nor the shutdown's wait for the others.
  const track = (served: Promise<void>) => {
    const p = served.catch((e: unknown) => log(`${(e as Error).message}`));
    serving.add(p);
    void p.finally(() => serving.delete(p));
    return p;
  };
  // A tick slower than the poll (a slow node) is not run twice at once: the next waits its turn.
  let ticking: Promise<unknown> | null = null;
  const timer = setInterval(() => {
    if (ticking) return;
    ticking = parts
      .tick()
      .catch((e: unknown) => log(`${(e as Error).message}`))
      .finally(() => (ticking = null));
  }, o.pollMs ?? 10_000);
  let stopped = false;
  let resolveStop!: () => void;
  const stopping = new Promise<void>((r) => (resolveStop = r));
  const stopRequested = () => {
    stopped = true;
    resolveStop();
  };
  let port: number | null = null;
  let closeListener: () => Promise<void> = async () => undefined;
  try {
    if ('stdio' in o.listen) {
      log(`serving one peer on stdin/stdout; key ${parts.key.publicKey.toString('hex')}`);
      // A stop that comes during the handshake ends the link rather than serve it after the shutdown.
      const one = stdioPeer(parts.key, limits).then((link) => (stopped ? link.close() : track(parts.serve(link))));
      void one.then(stopRequested, (e: unknown) => {
        log(`${(e as Error).message}`);
        stopRequested();
      });
    } else {
      const { host, port: wantedPort } = parseHostPort(o.listen.tcp, '--listen', true);
      const budget = connectionBudget();
      const wanted = limits.maxConnections ?? DEFAULT_MAX_CONNECTIONS;
      const maxConnections = budget === null ? wanted : Math.max(1, Math.min(wanted, budget));
      if (budget !== null && maxConnections < wanted) log(`at most ${maxConnections} connections, not ${wanted}: the rest of this process's ${budget + RESERVED_DESCRIPTORS} file descriptors (ulimit -n) are kept for its own files`);
      const server = await listenTcp(host, wantedPort, parts.key, (link) => void track(parts.serve(link)), { ...limits, maxConnections, onError: (e) => log(`${e.code}: ${e.message}`) });
      port = server.port;
      closeListener = () => server.close();
    }
  } catch (e) {
    clearInterval(timer);
    throw e;
  }
  const done = stopping.then(async () => {
    clearInterval(timer);
    await closeListener();
    await Promise.all(serving);
    await ticking;
    await parts.shutdown();
  });
  const host = 'tcp' in o.listen ? parseHostPort(o.listen.tcp, '--listen', true).host : null;
  return {
    port,
    listening: port === null ? null : `${host}:${port}`,
    peerKey: parts.key.publicKey.toString('hex'),
    done,
    stop: () => {
      stopRequested();
      return done;
    },
  };
}
