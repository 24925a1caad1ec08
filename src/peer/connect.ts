/**
 * Where a peer is, and reaching it there: a TCP address or a command that speaks the
 * protocol on its stdin and stdout (`--peer-cmd`, as git reaches a remote over ssh).
 */
import { connectTcp, parsePeerKey, spawnPeer } from './transports.js';
import type { PeerLink } from './link.js';
import { peerStaticKey } from './keys.js';

export type PeerAddress = { kind: 'tcp'; host: string; port: number } | { kind: 'cmd'; command: string };

/** Opens a link to `peer` under the wallet's static key; with `peerKey` (hex), any other key is refused. */
export async function connectPeer(peer: PeerAddress, seed: Uint8Array, peerKey: string | undefined): Promise<PeerLink> {
  const opts = peerKey === undefined ? {} : { peerKey: parsePeerKey(peerKey) };
  const key = peerStaticKey(seed);
  return peer.kind === 'tcp' ? connectTcp(peer.host, peer.port, key, opts) : spawnPeer(peer.command, key, opts);
}

/** How this wallet reaches a peer: a function, so callers (and tests) can route links elsewhere. */
export type Connector = (peer: PeerAddress, peerKey: string | undefined) => Promise<PeerLink>;

export function connectorFor(seed: Uint8Array): Connector {
  return (peer, peerKey) => connectPeer(peer, seed, peerKey);
}
