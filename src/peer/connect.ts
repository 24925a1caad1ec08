/**
 * Where a peer is, and reaching it there: a TCP address or a command that speaks the
 * protocol on its stdin and stdout (`--peer-cmd`, as git reaches a remote over ssh).
 */
import { connectTcp, parsePeerKey, spawnPeer } from './transports.js';
import type { PeerLink } from './link.js';
import type { StaticKey } from './keys.js';
import type { PeerStderr } from './command-stderr.js';

export type PeerAddress = { kind: 'tcp'; host: string; port: number } | { kind: 'cmd'; command: string };

/**
 * Opens a link to `peer` under the wallet's static key; with `peerKey` (hex), any other key
 * is refused. A command's stderr goes to `stderr` line by line (else straight to ours).
 */
export async function connectPeer(peer: PeerAddress, key: StaticKey, peerKey: string | undefined, stderr?: PeerStderr): Promise<PeerLink> {
  const opts = peerKey === undefined ? {} : { peerKey: parsePeerKey(peerKey) };
  return peer.kind === 'tcp' ? connectTcp(peer.host, peer.port, key, opts) : spawnPeer(peer.command, key, stderr === undefined ? opts : { ...opts, stderr });
}

/** How this wallet reaches a peer: a function, so callers (and tests) can route links elsewhere. */
export type Connector = (peer: PeerAddress, peerKey: string | undefined) => Promise<PeerLink>;

export function connectorFor(key: StaticKey, stderr?: PeerStderr): Connector {
  return (peer, peerKey) => connectPeer(peer, key, peerKey, stderr);
}
