/**
 * The wallet's own private derivation and signing (src/wallet/xprv.ts, what creating,
 * unlocking, sending and every contract key run on) give exactly what the bip32 library
 * gave: the same keys and fields at any path from any seed, the same xpub, the same
 * signatures (low-R ground the same way), and refuse what it refuses.
 * The official vectors run in wallet-bip-vectors.test.ts.
 */
import fc from 'fast-check';
import * as ecc from 'tiny-secp256k1';
import type { BIP32Interface } from 'bip32';
import { bitcoinjsNetwork, NETWORK_NAMES } from '../src/bitcoin/network.js';
import { PrivateNode } from '../src/wallet/xprv.js';
import { bip32 } from './helpers/bip32.js';

const RUNS = Number(process.env.SWARMPAY_FUZZ_RUNS ?? 40);
const SEED = Number(process.env.SWARMPAY_FUZZ_SEED ?? 20261201);
const run = { numRuns: RUNS, seed: SEED };

const HARDENED = 0x80000000;
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const network = fc.constantFrom(...NETWORK_NAMES);
const seedBytes = fc.uint8Array({ minLength: 16, maxLength: 64 });
/** A path step: an index below 2^31, hardened or not; small indices as often as any. */
const step = fc.record({ index: fc.oneof(fc.integer({ min: 0, max: 9 }), fc.integer({ min: 0, max: HARDENED - 1 })), hardened: fc.boolean() });
const steps = fc.array(step, { minLength: 1, maxLength: 5 });
const pathOf = (s: { index: number; hardened: boolean }[]) => ['m', ...s.map((x) => `${x.index}${x.hardened ? "'" : ''}`)].join('/');

/** Every field a node has, as bip32 names them, the xpub under `network`'s version. */
function fields(n: PrivateNode | BIP32Interface, xpub: string) {
  return {
    privateKey: hex(n.privateKey!),
    publicKey: hex(n.publicKey),
    chainCode: hex(n.chainCode),
    fingerprint: hex(n.fingerprint),
    parentFingerprint: n.parentFingerprint,
    depth: n.depth,
    index: n.index,
    xpub,
  };
}

describe('a private node', () => {
  test('at every step of a random path from a random seed is bip32\'s', () => {
    fc.assert(
      fc.property(seedBytes, steps, network, (seed, path, net) => {
        let ours = PrivateNode.fromSeed(seed);
        let theirs = bip32().fromSeed(seed, bitcoinjsNetwork(net));
        expect(fields(ours, ours.xpub(net))).toEqual(fields(theirs, theirs.neutered().toBase58()));
        for (const s of path) {
          const index = s.hardened ? s.index + HARDENED : s.index;
          ours = ours.derive(index);
          theirs = theirs.derive(index);
          expect(fields(ours, ours.xpub(net))).toEqual(fields(theirs, theirs.neutered().toBase58()));
        }
        // The whole path at once too, as accountNode derives.
        const p = pathOf(path);
        const atPath = PrivateNode.fromSeed(seed).derivePath(p);
        expect(fields(atPath, atPath.xpub(net))).toEqual(fields(theirs, theirs.neutered().toBase58()));
      }),
      run,
    );
  });

  test('signs a random hash as bip32 does, with and without low R', () => {
    fc.assert(
      fc.property(seedBytes, steps, fc.uint8Array({ minLength: 32, maxLength: 32 }), (seed, path, hash) => {
        const p = pathOf(path);
        const ours = PrivateNode.fromSeed(seed).derivePath(p);
        const theirs = bip32().fromSeed(seed).derivePath(p);
        expect(hex(ours.sign(hash))).toBe(hex(theirs.sign(hash)));
        expect(hex(ours.sign(hash, false))).toBe(hex(theirs.sign(hash, false)));
        const lowR = ours.sign(hash, true);
        expect(hex(lowR)).toBe(hex(theirs.sign(hash, true)));
        expect(lowR[0]).toBeLessThan(0x80);
        expect(ecc.verify(hash, ours.publicKey, lowR)).toBe(true);
      }),
      run,
    );
  });

  test('grinds for low R where the first signature has a high R', () => {
    // About half of all hashes give a high R first; find one, so the loop itself is compared.
    const node = PrivateNode.fromSeed(Buffer.alloc(32, 1));
    let hash = Buffer.alloc(32);
    for (let i = 0; node.sign(hash)[0]! < 0x80; i++) hash = Buffer.alloc(32, i);
    const sig = node.sign(hash, true);
    expect(sig[0]).toBeLessThan(0x80);
    expect(hex(sig)).toBe(hex(bip32().fromSeed(Buffer.alloc(32, 1)).sign(hash, true)));
  });

  test('refuses what bip32 refuses: a seed of the wrong size, an index outside [0, 2^32), a malformed path', () => {
    const seed = Buffer.alloc(32, 9);
    for (const n of [0, 15, 65, 100]) {
      expect(() => PrivateNode.fromSeed(Buffer.alloc(n))).toThrow(/16 to 64 bytes/);
      expect(() => bip32().fromSeed(Buffer.alloc(n))).toThrow();
    }
    for (const index of [-1, 0x100000000, 1.5, Number.NaN]) {
      expect(() => PrivateNode.fromSeed(seed).derive(index)).toThrow(/BIP32 index/);
      expect(() => bip32().fromSeed(seed).derive(index)).toThrow();
    }
    for (const path of ['m', '', 'm/', '/1', "m/1''", 'm/1/', 'x/1', "m/-1", "m/1h", "m/2147483648'"]) {
      expect(() => PrivateNode.fromSeed(seed).derivePath(path)).toThrow();
      expect(() => bip32().fromSeed(seed).derivePath(path)).toThrow();
    }
    // A path from m needs the master.
    expect(() => PrivateNode.fromSeed(seed).derive(HARDENED).derivePath('m/0')).toThrow(/master/);
    expect(() => bip32().fromSeed(seed).derive(HARDENED).derivePath('m/0')).toThrow();
    // A relative path from any node is the same steps.
    const child = PrivateNode.fromSeed(seed).derive(HARDENED + 3);
    expect(hex(child.derivePath("0/7'").privateKey)).toBe(hex(bip32().fromSeed(seed).derive(HARDENED + 3).derivePath("0/7'").privateKey!));
  });
});
