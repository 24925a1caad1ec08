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

export function seal(key: Uint8Array, plaintext: Uint8Array, aad: string): Sealed {
  const iv = randomBytes(12);
  const c = createCipheriv('aes-256-gcm', key, iv);
  c.setAAD(Buffer.from(aad, 'utf8'));
  const ct = Buffer.concat([c.update(plaintext), c.final()]);
  return { iv: iv.toString('hex'), ct: ct.toString('base64'), tag: c.getAuthTag().toString('hex') };
}

/** Returns null when authentication fails (wrong key, or the bytes were changed). */
export function open(key: Uint8Array, sealed: Sealed, aad: string): Buffer | null {
  try {
    const d = createDecipheriv('aes-256-gcm', key, Buffer.from(sealed.iv, 'hex'));
    d.setAAD(Buffer.from(aad, 'utf8'));
    d.setAuthTag(Buffer.from(sealed.tag, 'hex'));
    return Buffer.concat([d.update(Buffer.from(sealed.ct, 'base64')), d.final()]);
  } catch {
    return null;
  }
}
