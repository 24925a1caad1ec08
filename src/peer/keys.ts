/**
 * X25519 keys as the peer link uses them: raw 32-byte strings on the outside (what a
 * peer pins, what goes on the wire), node:crypto KeyObjects only for the moment of a DH.
 */
import { createHmac, createPrivateKey, createPublicKey, diffieHellman, randomBytes } from 'node:crypto';
import { SwarmpayError } from '../errors.js';

export interface StaticKey {
  /** 32-byte raw X25519 public key: what the peer sees and may pin. */
  publicKey: Buffer;
  /** 32-byte raw X25519 private key. */
  privateKey: Buffer;
}

export const KEY_LEN = 32;

// RFC 8410 DER wrappers: node:crypto imports raw X25519 keys only inside PKCS#8 / SPKI.
const PKCS8_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex');
const SPKI_PREFIX = Buffer.from('302a300506032b656e032100', 'hex');

const privateKeyObject = (priv: Uint8Array) => createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, priv]), format: 'der', type: 'pkcs8' });
const publicKeyObject = (pub: Uint8Array) => createPublicKey({ key: Buffer.concat([SPKI_PREFIX, pub]), format: 'der', type: 'spki' });

/**
 * A wallet's identity on the peer link, for every protocol (channel, escrow): derived from
 * the wallet seed, so the mnemonic restores it and peers that pinned it still know it.
 */
export function peerStaticKey(seed: Uint8Array): StaticKey {
  return staticKeyFromPrivate(createHmac('sha256', seed).update('swarmpay/peer-static-key/v1').digest());
}

/** Any 32 bytes are an X25519 private key (the scalar is clamped when used), so the channel code can derive one from the wallet seed. */
export function staticKeyFromPrivate(priv: Uint8Array): StaticKey {
  if (priv.length !== KEY_LEN) throw new SwarmpayError('INTERNAL', `an X25519 private key is ${KEY_LEN} bytes, not ${priv.length}`);
  const privateKey = Buffer.from(priv);
  const spki = createPublicKey(privateKeyObject(privateKey)).export({ format: 'der', type: 'spki' });
  return { privateKey, publicKey: spki.subarray(SPKI_PREFIX.length) };
}

export function generateStaticKey(): StaticKey {
  return staticKeyFromPrivate(randomBytes(KEY_LEN));
}

/** X25519(priv, pub). A peer's low-order point makes the result all zeros, which OpenSSL refuses; that is the peer's fault, not ours. */
export function dh(priv: Buffer, pub: Buffer): Buffer {
  try {
    return diffieHellman({ privateKey: privateKeyObject(priv), publicKey: publicKeyObject(pub) });
  } catch (e) {
    throw new SwarmpayError('PEER_PROTOCOL', 'sent an invalid X25519 public key (a low-order point)', { cause: e });
  }
}

/** --peer-key: the peer's static public key as 64 hex characters. */
export function parsePeerKey(hex: string): Buffer {
  if (!/^[0-9a-fA-F]{64}$/.test(hex)) {
    const got = /^[0-9a-fA-F]*$/.test(hex) ? `${hex.length} of them` : 'characters that are not hex';
    throw new SwarmpayError('USAGE', `--peer-key takes the peer's static public key as ${KEY_LEN * 2} hex characters, not ${got}`, {
      hint: "get the key from the peer's operator over a channel you trust: it is what proves you reached that peer",
    });
  }
  return Buffer.from(hex, 'hex');
}
