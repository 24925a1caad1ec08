/**
 * secp256k1: tiny-secp256k1 (libsecp256k1 compiled to WebAssembly), loaded on first use, and
 * two operations that do not wait for it. Loading it and its first signature cost a command
 * about 11 ms (reading and compiling its WebAssembly, setting up its context), which a command
 * that signs or checks nothing (`wallet balance`, `--version`) should not pay for, and a single
 * `channel pay` pays for one signature. CommonJS through require, as a synchronous import must be.
 */
import { createRequire } from 'node:module';
import { secp256k1 } from '@noble/curves/secp256k1.js';

type Ecc = typeof import('tiny-secp256k1');

let lib: Ecc | null = null;

export function ecc(): Ecc {
  return (lib ??= createRequire(import.meta.url)('tiny-secp256k1') as Ecc);
}

/** Whether a key is a compressed point of the curve (@noble/curves: a check, no need for tiny-secp256k1). */
export function isCompressedPoint(key: Uint8Array): boolean {
  if (key.length !== 33 || (key[0] !== 0x02 && key[0] !== 0x03)) return false;
  try {
    secp256k1.Point.fromBytes(key);
    return true;
  } catch {
    return false;
  }
}

/** Whether @noble/curves' tables for signing are built: prepareSigning() does it. */
let nobleReady = false;
/** tiny-secp256k1 is loaded this long after noble first serves, for what follows (it signs four times faster, verifies five). */
const LOAD_AFTER_MS = 100;
let loadScheduled = false;

/**
 * Builds @noble/curves' tables for signing and compiles its code, about 30 ms: for the CLI's
 * start-up snapshot, whose heap keeps them, so that a command's first signature or check is
 * 3 ms of noble's instead of loading tiny-secp256k1 (see signDigest).
 */
export function prepareSigning(): void {
  const [digest, priv] = [new Uint8Array(32).fill(1), new Uint8Array(32).fill(1)];
  const sig = secp256k1.sign(digest, priv, { prehash: false });
  secp256k1.verify(sig, digest, secp256k1.getPublicKey(priv), { prehash: false });
  nobleReady = true;
}

/** One ECDSA implementation: signDigest and verifyDigest choose which serves. */
interface Ecdsa {
  sign(digest: Uint8Array, priv: Uint8Array, extraData?: Uint8Array): Uint8Array;
  verify(digest: Uint8Array, pub: Uint8Array, sig64: Uint8Array): boolean;
}

/** libsecp256k1, through tiny-secp256k1. */
export const libsecp256k1: Ecdsa = {
  sign: (digest, priv, extraData) => ecc().sign(digest, priv, extraData),
  verify(digest, pub, sig64) {
    const e = ecc();
    try {
      // Its verify throws unless r and s are scalars in [1, n) (what isPrivate checks).
      return e.isPrivate(sig64.subarray(0, 32)) && e.isPrivate(sig64.subarray(32)) && e.verify(digest, pub, sig64, true);
    } catch {
      return false;
    }
  },
};

/** @noble/curves (audited, plain JavaScript): RFC 6979 and low s, as libsecp256k1. */
export const noble: Ecdsa = {
  sign: (digest, priv, extraData) => secp256k1.sign(digest, priv, { prehash: false, lowS: true, extraEntropy: extraData ?? false }),
  verify(digest, pub, sig64) {
    try {
      return secp256k1.verify(sig64, digest, pub, { prehash: false, lowS: true, format: 'compact' });
    } catch {
      return false;
    }
  },
};

const DIGEST_BYTES = 32;

/** Whether @noble/curves serves now (its tables built, tiny-secp256k1 not loaded); if so, tiny-secp256k1 loads a moment later. */
function serving(): Ecdsa {
  if (lib !== null || !nobleReady) return libsecp256k1;
  if (!loadScheduled) {
    loadScheduled = true;
    setTimeout(() => {
      // A process that cannot load it (no memory for its WebAssembly, no file descriptor
      // left) goes on with noble, as it signed so far: never an exception from a timer.
      try {
        ecc();
      } catch {
        // lib stays null: noble serves
      }
    }, LOAD_AFTER_MS).unref();
  }
  return noble;
}

/**
 * An ECDSA signature of a 32-byte digest: 64 bytes r‖s, s low, the nonce by RFC 6979 with
 * `extraData` (32 bytes) mixed in as libsecp256k1 mixes it. Both implementations give the
 * same bytes (test/bitcoin-ecc.test.ts): libsecp256k1 once loaded, else @noble/curves where
 * its tables are built (the start-up snapshot), libsecp256k1 then loading a moment later for
 * a process that goes on signing.
 */
export function signDigest(digest: Uint8Array, priv: Uint8Array, extraData?: Uint8Array): Uint8Array {
  // noble would sign any length (libsecp256k1 refuses): a digest is 32 bytes, anything else a bug.
  if (digest.length !== DIGEST_BYTES) throw new RangeError(`a digest to sign is ${DIGEST_BYTES} bytes, not ${digest.length}`);
  return serving().sign(digest, priv, extraData);
}

/**
 * Whether a 64-byte signature r‖s of a 32-byte `digest` verifies for `pub` (a compressed
 * key), strictly: r and s in [1, n) and s low. Any bytes, as a peer may send, are an answer,
 * never an exception. The implementation as signDigest's.
 */
export function verifyDigest(digest: Uint8Array, pub: Uint8Array, sig64: Uint8Array): boolean {
  // The lengths both implementations agree on: they differ on a digest of another length and on uncompressed keys.
  if (digest.length !== DIGEST_BYTES || pub.length !== 33 || sig64.length !== 64) return false;
  return serving().verify(digest, pub, sig64);
}
