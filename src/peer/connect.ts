/**
 * Where a peer is, and reaching it there: a TCP address or a command that speaks the
 * protocol on its stdin and stdout (`--peer-cmd`, as git reaches a remote over ssh).
 */
import { connectTcp, parsePeerKey, spawnPeer } from './transports.js';
import type { PeerLink } from './link.js';
import type { StaticKey } from './keys.js';

export type PeerAddress = { kind: 'tcp'; host: string; port: number } | { kind: 'cmd'; command: string };

/** Opens a link to `peer` under the wallet's static key; with `peerKey` (hex), any other key is refused. */
export async function connectPeer(peer: PeerAddress, key: StaticKey, peerKey: string | undefined): Promise<PeerLink> {
  const opts = peerKey === undefined ? {} : { peerKey: parsePeerKey(peerKey) };
  return peer.kind === 'tcp' ? connectTcp(peer.host, peer.port, key, opts) : spawnPeer(peer.command, key, opts);
}

/** How this wallet reaches a peer: a function, so callers (and tests) can route links elsewhere. */
export type Connector = (peer: PeerAddress, peerKey: string | undefined) => Promise<PeerLink>;

export function connectorFor(key: StaticKey): Connector {
  return (peer, peerKey) => connectPeer(peer, key, peerKey);
}
