/**
 * Keys a channel needs, all derived from the wallet seed so that the mnemonic recovers
 * them: the peer link's static X25519 key (one per wallet: its identity to peers) and
 * one secp256k1 key per channel on a chain of the BIP84 account the wallet never scans
 * for coins (chain 2), so channel keys never collide with receive or change keys.
 */
import { createHmac } from 'node:crypto';
import type { NetworkName } from '../bitcoin/network.js';
import { accountNode } from '../wallet/hd.js';
import { staticKeyFromPrivate, type StaticKey } from '../peer/keys.js';

const CHANNEL_CHAIN = 2;

export function peerStaticKey(seed: Uint8Array): StaticKey {
  return staticKeyFromPrivate(createHmac('sha256', seed).update('swarmpay/peer-static-key/v1').digest());
}

export function channelKey(seed: Uint8Array, network: NetworkName, index: number): { priv: Buffer; pub: Buffer } {
  const node = accountNode(seed, network).derive(CHANNEL_CHAIN).derive(index);
  return { priv: Buffer.from(node.privateKey!), pub: Buffer.from(node.publicKey) };
}
