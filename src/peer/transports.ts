/**
 * Where a link's byte stream comes from: a TCP connection either way, a command's
 * stdin/stdout (`--peer-cmd "ssh host swarmpay channel serve --stdio"`, as git runs
 * upload-pack over ssh), or our own stdin/stdout (`--stdio`). The link is the same on all.
 */
import { spawn } from 'node:child_process';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { isSwarmpayError, SwarmpayError } from '../errors.js';
import type { StaticKey } from './keys.js';
import { handshake, linkOptions, type LinkOptions, type PeerLink } from './link.js';
import { commandName, readLines, type PeerStderr } from './command-stderr.js';
import { DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_HANDSHAKES } from './limits.js';

// --peer-key is read where --peer and --peer-cmd are.
export { parsePeerKey } from './keys.js';

/** How long a command that failed gets to report its exit status before we stop waiting for it. */
const EXIT_WAIT_MS = 1_000;

export async function connectTcp(host: string, port: number, key: StaticKey, opts: LinkOptions = {}): Promise<PeerLink> {
  const where = `${host}:${port}`;
  const ms = linkOptions(opts).handshakeTimeoutMs;
  const socket = await new Promise<net.Socket>((resolve, reject) => {
    const s = net.connect({ host, port });
    const fail = (why: string) => {
      s.destroy();
      reject(new SwarmpayError('PEER_UNREACHABLE', `cannot reach peer ${where}: ${why}`, { hint: 'check the address and that the peer is serving there' }));
    };
    const timer = setTimeout(() => fail(`no connection within ${ms / 1000} s`), ms);
    s.once('error', (e: NodeJS.ErrnoException) => (clearTimeout(timer), fail(e.code ?? e.message)));
    s.once('connect', () => (clearTimeout(timer), s.removeAllListeners('error'), resolve(s)));
  });
  socket.setNoDelay(true);
  return handshake({ readable: socket, writable: socket, describe: `peer ${where}` }, 'initiator', key, opts);
}

/** How many connections a server holds at once, and how many of them may be mid-handshake. */
export interface ServerLimits {
  /** Links, handshakes and connections waiting for one, together; past it a new connection is closed at once. Default 4,096. */
  maxConnections?: number;
  /** Handshakes run at once; later connections wait their turn (within the handshake timeout). Default 64. */
  maxHandshakes?: number;
}

/**
 * One network (see `networkOf`) runs at most this share of the handshakes at once: silent
 * connections hold their slots for the whole handshake timeout, and from a few networks
 * they would otherwise fill every slot and make each honest peer wait that long.
 */
const NETWORK_SHARE = 8;

/**
 * The network a peer's address belongs to, the unit of fairness: an IPv4 /24, an IPv6 /64
 * (one host commonly holds a whole /64, 2^64 addresses), an IPv4-mapped address as IPv4.
 */
export function networkOf(address: string): string {
  const v4 = address.startsWith('::ffff:') && net.isIPv4(address.slice(7)) ? address.slice(7) : address;
  if (net.isIPv4(v4)) return v4.split('.').slice(0, 3).join('.') + '.0/24';
  if (!net.isIPv6(address)) return address;
  const [head = '', tail = ''] = address.split('::');
  const h = head === '' ? [] : head.split(':');
  const t = tail === '' ? [] : tail.split(':');
  const groups = address.includes('::') ? [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t] : h;
  return groups.slice(0, 4).map((g) => parseInt(g, 16).toString(16)).join(':') + '::/64';
}

export { DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_HANDSHAKES };

/**
 * Accepts connections and runs the handshake on each; `onLink` gets the links that pass,
 * `onError` the connections that did not (scanners, wrong keys, timeouts, connections past
 * a limit), which are otherwise dropped quietly. close() stops accepting; links already
 * open stay open.
 */
export async function listenTcp(
  host: string,
  port: number,
  key: StaticKey,
  onLink: (link: PeerLink) => void,
  opts: LinkOptions & ServerLimits & { onError?: (e: SwarmpayError) => void } = {},
): Promise<{ port: number; close(): Promise<void> }> {
  const handshaking = new Set<net.Socket>();
  /** Handshakes running, per network. */
  const running = new Map<string, number>();
  /**
   * Connections accepted and not yet read, waiting for a handshake slot: per network, oldest
   * first, the networks taken in turn. In turn, so that one network that floods the server
   * with silent connections gets one slot in every few, not all of them.
   */
  const waiting = new Map<string, Map<net.Socket, NodeJS.Timeout>>();
  let waitingCount = 0;
  const unwait = (network: string, socket: net.Socket): void => {
    const queue = waiting.get(network);
    if (!queue?.has(socket)) return;
    clearTimeout(queue.get(socket));
    queue.delete(socket);
    waitingCount--;
    if (queue.size === 0) waiting.delete(network);
  };
  let open = 0;
  const maxConnections = opts.maxConnections ?? DEFAULT_MAX_CONNECTIONS;
  const maxHandshakes = opts.maxHandshakes ?? DEFAULT_MAX_HANDSHAKES;
  const waitMs = linkOptions(opts).handshakeTimeoutMs;
  const perNetwork = Math.max(1, Math.floor(maxHandshakes / NETWORK_SHARE));
  const describe = (s: net.Socket) => `peer ${s.remoteAddress}:${s.remotePort}`;
  const canStart = (network: string) => handshaking.size < maxHandshakes && (running.get(network) ?? 0) < perNetwork;
  const start = (socket: net.Socket, network: string) => {
    handshaking.add(socket);
    running.set(network, (running.get(network) ?? 0) + 1);
    socket.resume();
    handshake({ readable: socket, writable: socket, describe: describe(socket) }, 'responder', key, opts).then(
      (link) => {
        finished(socket, network);
        open++;
        const done = () => open--;
        link.closed.then(done, done);
        onLink(link);
      },
      (e: SwarmpayError) => (finished(socket, network), opts.onError?.(e)),
    );
  };
  const finished = (socket: net.Socket, from: string) => {
    handshaking.delete(socket);
    const n = (running.get(from) ?? 1) - 1;
    if (n === 0) running.delete(from);
    else running.set(from, n);
    // The first network in turn that is under its share starts its oldest waiting connection.
    for (const [network, queue] of waiting) {
      if (!canStart(network)) continue;
      const next = queue.keys().next().value!;
      unwait(network, next);
      // This network goes to the back of the turn.
      const rest = waiting.get(network);
      if (rest) {
        waiting.delete(network);
        waiting.set(network, rest);
      }
      start(next, network);
      return;
    }
  };
  /**
   * At the connection limit, a newcomer from a network that waits less than the network
   * that waits most takes the place of that network's oldest waiting connection: one
   * network's flood of silent connections cannot keep every other network out.
   */
  const evictFor = (network: string): boolean => {
    let largest: [string, Map<net.Socket, NodeJS.Timeout>] | null = null;
    for (const entry of waiting) if (largest === null || entry[1].size > largest[1].size) largest = entry;
    if (largest === null || largest[1].size <= (waiting.get(network)?.size ?? 0) + 1) return false;
    const [from, queue] = largest;
    const oldest = queue.keys().next().value!;
    const who = describe(oldest);
    unwait(from, oldest);
    oldest.destroy();
    opts.onError?.(new SwarmpayError('PEER_REFUSED', `${who}: dropped while waiting for a handshake, for a peer of another network: this server holds ${maxConnections} connections at once`, { hint: 'the server is flooded with connections from one network' }));
    return true;
  };
  const server = net.createServer({ pauseOnConnect: true }, (socket) => {
    // Refused before anything is read or allocated for it: a flood of connections costs a
    // descriptor for a moment each, and the links being served keep theirs.
    if (open + handshaking.size + waitingCount >= maxConnections && !evictFor(networkOf(socket.remoteAddress ?? ''))) {
      const who = describe(socket); // a destroyed socket no longer knows its address
      socket.destroy();
      opts.onError?.(new SwarmpayError('PEER_REFUSED', `${who}: refused: this server holds ${maxConnections} connections at once`, { hint: 'try again later; the operator can raise --max-connections' }));
      return;
    }
    socket.setNoDelay(true);
    socket.on('error', () => undefined); // a connection that waits may be reset meanwhile
    const network = networkOf(socket.remoteAddress ?? '');
    if (canStart(network)) return start(socket, network);
    // A burst (a payer opening two hundred channels at once) waits its turn, paused, for as long as a handshake may take.
    const queue = waiting.get(network) ?? new Map<net.Socket, NodeJS.Timeout>();
    waiting.set(network, queue);
    waitingCount++;
    queue.set(socket, setTimeout(() => {
      const who = describe(socket);
      unwait(network, socket);
      socket.destroy();
      opts.onError?.(new SwarmpayError('PEER_TIMEOUT', `${who}: waited ${waitMs / 1000} s for one of ${maxHandshakes} handshakes (${perNetwork} per network); closed`, { hint: 'the server is flooded with connections; the operator can raise --max-handshakes' }));
    }, waitMs));
  });
  const listenFailed = (e: NodeJS.ErrnoException) =>
    new SwarmpayError('PEER_LISTEN_FAILED', `cannot listen on ${host}:${port}: ${e.code ?? e.message}`, { hint: 'choose another port, or stop what holds this one', cause: e });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e) => reject(listenFailed(e)));
    server.listen(port, host, () => (server.removeAllListeners('error'), resolve()));
  });
  server.on('error', (e) => opts.onError?.(listenFailed(e)));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: async () => {
      server.close();
      for (const s of handshaking) s.destroy();
      for (const queue of waiting.values()) {
        for (const [s, timer] of queue) {
          clearTimeout(timer);
          s.destroy();
        }
      }
      waiting.clear();
      waitingCount = 0;
    },
  };
}

/**
 * Runs `command` with /bin/sh and speaks to its stdin/stdout. Its stderr goes to `stderr`
 * a line at a time with the peer's name (see commandName), or without it straight to ours
 * (ssh's errors reach the user either way; its prompts go to the terminal itself). The
 * command is killed when the link closes.
 */
export async function spawnPeer(command: string, key: StaticKey, opts: LinkOptions & { stderr?: PeerStderr } = {}): Promise<PeerLink> {
  const { stderr, ...linkOpts } = opts;
  const child = stderr === undefined ? spawn('/bin/sh', ['-c', command], { stdio: ['pipe', 'pipe', 'inherit'] }) : spawn('/bin/sh', ['-c', command], { stdio: ['pipe', 'pipe', 'pipe'] });
  if (stderr !== undefined && child.stderr !== null) {
    const name = commandName(command);
    readLines(child.stderr, (line) => stderr(line, name));
  }
  // 'close', not 'exit': by then its stderr is read to the end, so its last words come before our error.
  const exited = new Promise<string>((resolve) => child.once('close', (code, signal) => resolve(signal ? `the command was killed by ${signal}` : `the command exited with status ${code}`)));
  // A failed spawn reaches the link as a failed input.
  child.once('error', (e) => child.stdout.destroy(e));
  const kill = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
  };
  try {
    const link = await handshake({ readable: child.stdout, writable: child.stdin, describe: `peer command "${command}"` }, 'initiator', key, linkOpts);
    link.closed.then(kill, kill);
    return link;
  } catch (e) {
    // "Closed the connection" says less than the command's own status (ssh: 255, not found: 127).
    const status = isSwarmpayError(e, 'PEER_UNREACHABLE') ? await Promise.race([exited, sleep(EXIT_WAIT_MS, null, { ref: false })]) : null;
    kill();
    if (!status || !isSwarmpayError(e)) throw e;
    throw new SwarmpayError(e.code, `${e.message}; ${status}`, { hint: 'run the command by hand to see why it fails: it must start `swarmpay channel serve --stdio`', details: e.details, cause: e });
  }
}

/** Serves one peer on our own stdin/stdout: nothing else may write to stdout meanwhile. */
export function stdioPeer(key: StaticKey, opts: LinkOptions = {}): Promise<PeerLink> {
  return handshake({ readable: process.stdin, writable: process.stdout, describe: 'the peer on stdin/stdout' }, 'responder', key, opts);
}
