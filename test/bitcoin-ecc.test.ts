/**
 * The two ECDSA implementations signDigest and verifyDigest choose between (libsecp256k1
 * through tiny-secp256k1, and @noble/curves where the start-up snapshot built its tables) give
 * the same signatures and the same answers, on any bytes a peer may send.
 */
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import fc from 'fast-check';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { ecc, isCompressedPoint, libsecp256k1, noble, signDigest, verifyDigest } from '../src/bitcoin/ecc.js';
import { ROOT } from './helpers/cli.js';

const N = secp256k1.Point.Fn.ORDER;
const bytes32 = fc.uint8Array({ minLength: 32, maxLength: 32 });
const scalar = fc.bigInt({ min: 1n, max: N - 1n }).map((k) => Buffer.from(k.toString(16).padStart(64, '0'), 'hex'));
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const pubOf = (priv: Uint8Array) => secp256k1.getPublicKey(priv, true);
const withS = (sig: Uint8Array, s: bigint) => Buffer.concat([sig.subarray(0, 32), Buffer.from(s.toString(16).padStart(64, '0'), 'hex')]);
const sOf = (sig: Uint8Array) => BigInt('0x' + hex(sig.subarray(32)));

describe('ECDSA: libsecp256k1 and @noble/curves agree', () => {
  it('sign the same bytes (RFC 6979, low s), with and without extra data', () => {
    fc.assert(
      fc.property(bytes32, scalar, fc.option(bytes32, { nil: undefined }), (digest, priv, extra) => {
        expect(hex(noble.sign(digest, priv, extra))).toBe(hex(libsecp256k1.sign(digest, priv, extra)));
      }),
      { numRuns: 300 },
    );
  });

  it('both accept a signature of either, and refuse it for another digest or key', () => {
    fc.assert(
      fc.property(bytes32, bytes32, scalar, scalar, (digest, other, priv, otherPriv) => {
        const sig = noble.sign(digest, priv);
        const pub = pubOf(priv);
        for (const v of [noble, libsecp256k1]) {
          expect(v.verify(digest, pub, sig)).toBe(true);
          expect(v.verify(other, pub, sig)).toBe(hex(other) === hex(digest));
          expect(v.verify(digest, pubOf(otherPriv), sig)).toBe(hex(otherPriv) === hex(priv));
        }
      }),
      { numRuns: 100 },
    );
  });

  it('give the same answer for any 64 bytes, a high s, r or s out of range, or a signature cut short', () => {
    const priv = Buffer.alloc(32, 7);
    const pub = pubOf(priv);
    const digest = Buffer.alloc(32, 9);
    const good = noble.sign(digest, priv);
    const cases: Uint8Array[] = [
      withS(good, N - sOf(good)), // the high-s twin of a valid signature: refused by both (strict)
      withS(good, 0n),
      withS(good, N),
      Buffer.concat([Buffer.alloc(32), good.subarray(32)]),
      Buffer.concat([Buffer.from(N.toString(16), 'hex'), good.subarray(32)]),
      Buffer.alloc(64, 0xff),
      good.subarray(0, 63),
      Buffer.concat([good, Buffer.alloc(1)]),
    ];
    for (const sig of cases) expect({ sig: hex(sig), noble: noble.verify(digest, pub, sig) }).toEqual({ sig: hex(sig), noble: libsecp256k1.verify(digest, pub, sig) });
    expect(libsecp256k1.verify(digest, pub, cases[0]!)).toBe(false);
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 70 }), bytes32, (sig, d) => {
        expect(noble.verify(d, pub, sig)).toBe(libsecp256k1.verify(d, pub, sig));
      }),
      { numRuns: 500 },
    );
  });

  it('tell a compressed point as tiny-secp256k1 does', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 34 }), fc.constantFrom(0x02, 0x03, 0x04, 0x00), (body, prefix) => {
        const key = Buffer.concat([Buffer.from([prefix]), body]);
        expect(isCompressedPoint(key)).toBe(ecc().isPointCompressed(key));
      }),
      { numRuns: 500 },
    );
    expect(isCompressedPoint(pubOf(Buffer.alloc(32, 7)))).toBe(true);
  });

  it('sign and check only 32-byte digests and compressed keys, where the two would differ', () => {
    const priv = Buffer.alloc(32, 7);
    const digest = Buffer.alloc(32, 9);
    const sig = signDigest(digest, priv);
    expect(verifyDigest(digest, pubOf(priv), sig)).toBe(true);
    expect(() => signDigest(Buffer.alloc(33, 9), priv)).toThrow(RangeError);
    expect(verifyDigest(Buffer.concat([digest, Buffer.alloc(1)]), pubOf(priv), sig)).toBe(false);
    // The hybrid encoding (0x06/0x07) of the same point: libsecp256k1 would take it, noble not.
    const full = secp256k1.getPublicKey(priv, false);
    const hybrid = Buffer.concat([Buffer.from([0x06 + (full[64]! & 1)]), full.subarray(1)]);
    expect(verifyDigest(digest, hybrid, sig)).toBe(false);
  });

  it('a process whose libsecp256k1 cannot load (no memory for its WebAssembly) goes on signing with noble', () => {
    // A real limit on the address space, under which Node runs but WebAssembly memory cannot be had.
    const ecc = path.join(ROOT, 'dist', 'bitcoin', 'ecc.js');
    const script = `import { prepareSigning, signDigest } from '${ecc}';
prepareSigning();
const d = new Uint8Array(32).fill(9), k = new Uint8Array(32).fill(7);
const first = Buffer.from(signDigest(d, k)).toString('hex');
await new Promise((r) => setTimeout(r, 400));
process.stdout.write(first === Buffer.from(signDigest(d, k)).toString('hex') ? 'alive' : 'changed');`;
    const out = execFileSync('sh', ['-c', 'ulimit -v 4000000; exec "$0" --input-type=module -e "$1"', process.execPath, script], { encoding: 'utf8' });
    expect(out).toBe('alive');
  });
});
