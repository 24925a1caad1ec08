/** Deterministic secp256k1 test keys by label, and what tests build of them. */
import { createHash } from 'node:crypto';
import { payments } from 'bitcoinjs-lib';
import * as ecc from 'tiny-secp256k1';

/** A private key per label, within `scope` (a test file's own keys differ from another's). */
export function labelledKeys(scope: string): (label: string) => Buffer {
  return (label) => createHash('sha256').update(`${scope} test ${label}`).digest();
}

/** The compressed public key of a private key. */
export function pub(k: Uint8Array): Buffer {
  const p = ecc.pointFromScalar(k, true);
  if (p === null) throw new Error('not a private key');
  return Buffer.from(p);
}

/** The P2WPKH output script paying the key. */
export function p2wpkh(k: Uint8Array): Buffer {
  const out = payments.p2wpkh({ pubkey: pub(k) }).output;
  if (out === undefined) throw new Error('no P2WPKH script');
  return Buffer.from(out);
}

export const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
