/** The keystore's primitives: scrypt for passphrases, AES-256-GCM for everything sealed. */
import { createCipheriv, createDecipheriv, randomBytes, scryptSync } from 'node:crypto';

export interface Sealed {
  iv: string;
  ct: string;
  tag: string;
}

export interface ScryptParams {
  N: number;
  r: number;
  p: number;
  salt: string;
}

/** 2^17 × 8 × 128 bytes = 128 MiB of memory per guess, about a third of a second here. */
export const DEFAULT_SCRYPT: Omit<ScryptParams, 'salt'> = { N: 1 << 17, r: 8, p: 1 };
/** Bounds on parameters read from a file, so a crafted file cannot exhaust memory or be trivially weak. */
export const SCRYPT_N_MIN = 1 << 14;
export const SCRYPT_N_MAX = 1 << 20;

export function deriveKey(passphrase: string, params: ScryptParams): Buffer {
  return scryptSync(passphrase.normalize('NFKC'), Buffer.from(params.salt, 'hex'), 32, {
    N: params.N,
    r: params.r,
    p: params.p,
    maxmem: 256 * params.N * params.r + 1024 * 1024,
  });
}

/** AES-256-GCM as bytes: a random 96-bit IV, the ciphertext and the 128-bit tag. */
export function sealBytes(key: Uint8Array, plaintext: Uint8Array, aad: string): { iv: Buffer; ct: Buffer; tag: Buffer } {
  const iv = randomBytes(12);
  const c = createCipheriv('aes-256-gcm', key, iv);
  c.setAAD(Buffer.from(aad, 'utf8'));
  const head = c.update(plaintext);
  // GCM is a stream mode: final() adds nothing, so a large keystore is not copied once more.
  const tail = c.final();
  return { iv, ct: tail.length === 0 ? head : Buffer.concat([head, tail]), tag: c.getAuthTag() };
}

/** sealBytes as text, for a JSON file. */
export function seal(key: Uint8Array, plaintext: Uint8Array, aad: string): Sealed {
  const s = sealBytes(key, plaintext, aad);
  return { iv: s.iv.toString('hex'), ct: s.ct.toString('base64'), tag: s.tag.toString('hex') };
}

/** Returns null when authentication fails (wrong key, or the bytes were changed). */
export function openBytes(key: Uint8Array, iv: Uint8Array, ct: Uint8Array, tag: Uint8Array, aad: string): Buffer | null {
  try {
    const d = createDecipheriv('aes-256-gcm', key, iv);
    d.setAAD(Buffer.from(aad, 'utf8'));
    d.setAuthTag(tag);
    const head = d.update(ct);
    const tail = d.final();
    return tail.length === 0 ? head : Buffer.concat([head, tail]);
  } catch {
    return null;
  }
}

/** openBytes of what seal wrote. */
export function open(key: Uint8Array, sealed: Sealed, aad: string): Buffer | null {
  return openBytes(key, Buffer.from(sealed.iv, 'hex'), Buffer.from(sealed.ct, 'base64'), Buffer.from(sealed.tag, 'hex'), aad);
}
