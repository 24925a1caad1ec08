/**
 * The wallet's own xpub reading and public derivation (src/wallet/xpub.ts, what `wallet
 * balance` runs on) give exactly what the bip32 and bitcoinjs libraries give: the same
 * fields, the same child keys, the same addresses, and the same refusals.
 */
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { payments } from 'bitcoinjs-lib';
import * as ecc from 'tiny-secp256k1';
import { bitcoinjsNetwork, NETWORK_NAMES } from '../src/bitcoin/network.js';
import { CHANGE, RECEIVE, accountFromXpub, accountNode, accountPath, accountXpub, deriveAddress } from '../src/wallet/hd.js';
import { basePoint, parseXpub, publicChild, serializeXpub, xpubVersion } from '../src/wallet/xpub.js';
import { bip32 } from './helpers/bip32.js';

const RUNS = Number(process.env.SWARMPAY_FUZZ_RUNS ?? 40);
const SEED = Number(process.env.SWARMPAY_FUZZ_SEED ?? 20261130);
const run = { numRuns: RUNS, seed: SEED };

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const network = fc.constantFrom(...NETWORK_NAMES);
const nonHardened = fc.integer({ min: 0, max: 0x7fffffff });
const chain = fc.constantFrom(RECEIVE, CHANGE);
const bytes = (n: number) => fc.uint8Array({ minLength: n, maxLength: n });

/** base58check's checksum: the first four bytes of the payload's double SHA-256. */
const sha256d = (b: Uint8Array) => createHash('sha256').update(createHash('sha256').update(b).digest()).digest();
const withChecksum = (payload: Buffer) => Buffer.concat([payload, sha256d(payload).subarray(0, 4)]);

describe('the account of a seed (hardened m/84\'/coin\'/0\'), read back from its xpub', () => {
  test('gives bip32\'s child keys and bitcoinjs\' addresses at any index', () => {
    fc.assert(
      fc.property(bytes(64), network, chain, nonHardened, (seed, net, which, index) => {
        const fromSeed = accountNode(seed, net);
        const fromXpub = accountFromXpub(accountXpub(seed, net), net);
        const expected = bip32().fromSeed(seed, bitcoinjsNetwork(net)).derivePath(accountPath(net)).derive(which).derive(index);
        const address = payments.p2wpkh({ pubkey: expected.publicKey, network: bitcoinjsNetwork(net) }).address;
        for (const account of [fromXpub, fromSeed]) {
          const a = deriveAddress(account, net, which, index);
          expect(hex(a.pubkey)).toBe(hex(expected.publicKey));
          expect(a.address).toBe(address);
          expect(hex(a.script)).toBe(hex(payments.p2wpkh({ pubkey: expected.publicKey }).output!));
          expect(a.path).toBe(`m/84'/${net === 'mainnet' ? 0 : 1}'/0'/${which}/${index}`);
        }
      }),
      run,
    );
  });

  test('the first addresses of both chains, as a scan derives them, are bip32\'s', () => {
    fc.assert(
      fc.property(bytes(64), network, (seed, net) => {
        const theirs = bip32().fromSeed(seed, bitcoinjsNetwork(net)).derivePath(accountPath(net));
        const fromXpub = accountFromXpub(accountXpub(seed, net), net);
        for (const which of [RECEIVE, CHANGE]) {
          for (let index = 0; index < 21; index++) expect(hex(deriveAddress(fromXpub, net, which, index).pubkey)).toBe(hex(theirs.derive(which).derive(index).publicKey));
        }
      }),
      { ...run, numRuns: Math.max(3, Math.floor(RUNS / 8)) },
    );
  });
});

test('G·k is tiny-secp256k1\'s, by Node\'s OpenSSL and by noble (where a Node build lacks the curve)', () => {
  fc.assert(
    fc.property(bytes(32).filter((k) => ecc.isPrivate(k)), (k) => {
      const expected = hex(ecc.pointFromScalar(k, true)!);
      expect(hex(basePoint(k, true).toBytes(true))).toBe(expected);
      expect(hex(basePoint(k, false).toBytes(true))).toBe(expected);
    }),
    run,
  );
});

describe('any extended public key', () => {
  /** A random valid public node as bip32 would write it: any key, chain code, depth, parent and index. */
  const xpub = fc
    .record({ priv: bytes(32), chainCode: bytes(32), depth: fc.integer({ min: 0, max: 255 }), parent: fc.integer({ min: 0, max: 0xffffffff }), index: fc.integer({ min: 0, max: 0xffffffff }), net: network })
    .filter((r) => ecc.isPrivate(r.priv))
    .map((r) => {
      const payload = Buffer.alloc(78);
      payload.writeUInt32BE(bitcoinjsNetwork(r.net).bip32.public, 0);
      payload.writeUInt8(r.depth, 4);
      payload.writeUInt32BE(r.depth === 0 ? 0 : r.parent, 5);
      payload.writeUInt32BE(r.depth === 0 ? 0 : r.index, 9);
      payload.set(r.chainCode, 13);
      payload.set(ecc.pointFromScalar(r.priv, true)!, 45);
      return { net: r.net, payload };
    });

  test('is read field by field as bip32 reads it, and written back the same', () => {
    fc.assert(
      fc.property(xpub, ({ net, payload }) => {
        const s = bs58(withChecksum(payload));
        const ours = parseXpub(s, net);
        const theirs = bip32().fromBase58(s, bitcoinjsNetwork(net));
        expect([ours.depth, ours.parentFingerprint, ours.index, hex(ours.chainCode), hex(ours.publicKey)]).toEqual([theirs.depth, theirs.parentFingerprint, theirs.index, hex(theirs.chainCode), hex(theirs.publicKey)]);
        expect(serializeXpub(ours, xpubVersion(net))).toBe(theirs.toBase58());
        expect(xpubVersion(net)).toBe(bitcoinjsNetwork(net).bip32.public);
      }),
      run,
    );
  });

  test('has the child keys bip32 derives from it', () => {
    fc.assert(
      fc.property(xpub, nonHardened, ({ net, payload }, index) => {
        const s = bs58(withChecksum(payload));
        expect(hex(publicChild(parseXpub(s, net), index).publicKey)).toBe(hex(bip32().fromBase58(s, bitcoinjsNetwork(net)).derive(index).publicKey));
      }),
      run,
    );
  });

  test('a payload bip32 refuses, we refuse (a key off the curve, a bad prefix, a master key with a parent, a wrong length or version)', () => {
    const mangled = fc.record({
      net: network,
      version: fc.constantFrom(0x0488b21e, 0x043587cf, 0x0488ade4, 0x04b24746),
      depth: fc.constantFrom(0, 1, 3),
      parent: fc.constantFrom(0, 1, 0xdeadbeef),
      index: fc.constantFrom(0, 5, 0x80000000),
      prefix: fc.constantFrom(0x02, 0x03, 0x04, 0x00, 0x05),
      x: bytes(32),
      length: fc.constantFrom(78, 78, 78, 77, 79),
    });
    fc.assert(
      fc.property(mangled, (m) => {
        const payload = Buffer.alloc(Math.max(m.length, 78));
        payload.writeUInt32BE(m.version, 0);
        payload.writeUInt8(m.depth, 4);
        payload.writeUInt32BE(m.parent, 5);
        payload.writeUInt32BE(m.index, 9);
        payload.writeUInt8(m.prefix, 45);
        payload.set(m.x, 46);
        const s = bs58(withChecksum(payload.subarray(0, m.length)));
        let theirs: string | null = null;
        try {
          const node = bip32().fromBase58(s, bitcoinjsNetwork(m.net));
          // An xprv is bip32's to read; an account key in the keystore is never one.
          theirs = node.isNeutered() ? hex(node.publicKey) : 'private';
        } catch {
          theirs = null;
        }
        let ours: string | null;
        try {
          ours = hex(parseXpub(s, m.net).publicKey);
        } catch (e) {
          expect((e as { code?: string }).code).toBe('KEYSTORE_CORRUPT');
          ours = null;
        }
        expect(ours).toBe(theirs === 'private' ? null : theirs);
      }),
      { ...run, numRuns: RUNS * 10 },
    );
  });

  test('a string with a changed character, or not base58 at all, is refused', () => {
    fc.assert(
      fc.property(xpub, fc.nat(), fc.constantFrom(...'123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz0OIl'), ({ net, payload }, at, c) => {
        const s = bs58(withChecksum(payload));
        const i = at % s.length;
        const changed = s.slice(0, i) + c + s.slice(i + 1);
        fc.pre(changed !== s);
        expect(() => parseXpub(changed, net)).toThrow(/not an extended public key/);
      }),
      run,
    );
    expect(() => parseXpub('', 'mainnet')).toThrow(/not an extended public key/);
    expect(() => parseXpub('x'.repeat(10_000), 'mainnet')).toThrow(/not an extended public key/);
  });
});

/** base58 of `bytes` (leading zero bytes as '1'), as bs58 writes it: the test's own, to check the module's. */
function bs58(bytes: Buffer): string {
  const alphabet = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz';
  const digits: number[] = [];
  for (const byte of bytes) {
    let carry = byte;
    for (let k = 0; k < digits.length; k++) {
      carry += digits[k]! << 8;
      digits[k] = carry % 58;
      carry = (carry / 58) | 0;
    }
    while (carry > 0) {
      digits.push(carry % 58);
      carry = (carry / 58) | 0;
    }
  }
  let out = '';
  for (const byte of bytes) {
    if (byte !== 0) break;
    out += '1';
  }
  for (let k = digits.length - 1; k >= 0; k--) out += alphabet[digits[k]!];
  return out;
}
