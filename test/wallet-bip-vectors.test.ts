/** The BIP documents' own test vectors, run through the code paths the wallet uses. */
import { readFileSync } from 'node:fs';
import { entropyToMnemonic, wordlists } from 'bip39';
import bs58check from 'bs58check';
import { ECPairFactory } from 'ecpair';
import * as ecc from 'tiny-secp256k1';
import { networks } from 'bitcoinjs-lib';
import { accountPath, accountXpub, accountZpub, accountFromXpub, deriveAddress, accountNode, RECEIVE, CHANGE } from '../src/wallet/hd.js';
import { PrivateNode } from '../src/wallet/xprv.js';
import { parseXpub, publicChild, serializeXpub, xpubVersion } from '../src/wallet/xpub.js';
import { checkMnemonic, mnemonicToSeed } from '../src/wallet/mnemonic.js';
import { bip32 } from './helpers/bip32.js';

const load = (name: string) => JSON.parse(readFileSync(new URL(`./vectors/${name}.json`, import.meta.url), 'utf8'));
const bip39v = load('bip39') as { passphrase: string; vectors: { entropy: string; mnemonic: string; seed: string; xprv: string }[] };
const bip32v = load('bip32') as { valid: { seed: string; chains: { path: string; xpub: string; xprv: string }[] }[]; invalid: { key: string; reason: string }[] };
const bip84v = load('bip84');

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

/** An extended private key's fields, read from its base58 (the wallet never reads one; the vectors are written so). */
function xprvFields(xprv: string) {
  const b = Buffer.from(bs58check.decode(xprv));
  expect(b.length).toBe(78);
  expect(b[45]).toBe(0);
  return { depth: b[4], parentFingerprint: b.readUInt32BE(5), index: b.readUInt32BE(9), chainCode: hex(b.subarray(13, 45)), privateKey: hex(b.subarray(46)) };
}

const fieldsOf = (n: PrivateNode) => ({ depth: n.depth, parentFingerprint: n.parentFingerprint, index: n.index, chainCode: hex(n.chainCode), privateKey: hex(n.privateKey) });

describe('BIP39 vectors (English, passphrase TREZOR)', () => {
  test.each(bip39v.vectors)('$mnemonic', (v) => {
    expect(entropyToMnemonic(Buffer.from(v.entropy, 'hex'), wordlists.english)).toBe(v.mnemonic);
    expect(checkMnemonic(v.mnemonic)).toBe(v.mnemonic);
    const seed = mnemonicToSeed(v.mnemonic, bip39v.passphrase);
    expect(Buffer.from(seed).toString('hex')).toBe(v.seed);
    expect(fieldsOf(PrivateNode.fromSeed(seed))).toEqual(xprvFields(v.xprv));
  });
  test('there are 24 of them', () => expect(bip39v.vectors).toHaveLength(24));
});

describe('BIP32 vectors', () => {
  const cases = bip32v.valid.flatMap((v, n) => v.chains.map((c) => ({ n: n + 1, seed: v.seed, ...c })));
  test.each(cases)('vector $n $path', (c) => {
    const root = PrivateNode.fromSeed(Buffer.from(c.seed, 'hex'));
    const node = c.path === 'm' ? root : root.derivePath(c.path);
    expect(fieldsOf(node)).toEqual(xprvFields(c.xprv));
    expect(node.xpub('mainnet')).toBe(c.xpub);
    // The parent's fingerprint, as the child's xprv names it.
    if (c.path !== 'm') {
      const parentPath = c.path.replace(/\/[^/]+$/, '');
      const parent = parentPath === 'm' ? root : root.derivePath(parentPath);
      expect(parent.fingerprint.readUInt32BE(0)).toBe(node.parentFingerprint);
    }
    // And the serialized keys read back to the same key.
    expect(bip32().fromBase58(c.xprv).toBase58()).toBe(c.xprv);
  });
  test('the master key of vector 1 has the fingerprint BIP32 gives its children', () => {
    expect(hex(PrivateNode.fromSeed(Buffer.from(bip32v.valid[0]!.seed, 'hex')).fingerprint)).toBe('3442193e');
  });
  test.each(bip32v.invalid)('invalid key refused: $reason', (v) => {
    expect(() => bip32().fromBase58(v.key)).toThrow();
    // The wallet's own reader (wallet balance) refuses it too, and as a damaged keystore.
    expect(() => parseXpub(v.key, 'mainnet')).toThrow(expect.objectContaining({ code: 'KEYSTORE_CORRUPT' }));
  });
  // Each public step of a vector's path, from its parent's xpub alone (CKDpub), as the wallet scans.
  const publicSteps = cases.flatMap((c) => {
    const parent = cases.find((p) => p.seed === c.seed && p.path === c.path.replace(/\/\d+$/, ''));
    return /\/\d+$/.test(c.path) && parent !== undefined ? [{ ...c, parentXpub: parent.xpub }] : [];
  });
  test.each(publicSteps)('vector $n $path from its parent\'s xpub', (c) => {
    const child = parseXpub(c.xpub, 'mainnet');
    expect(serializeXpub(child, xpubVersion('mainnet'))).toBe(c.xpub);
    const derived = publicChild(parseXpub(c.parentXpub, 'mainnet'), child.index);
    expect(Buffer.from(derived.publicKey).toString('hex')).toBe(Buffer.from(child.publicKey).toString('hex'));
    expect(Buffer.from(derived.chainCode).toString('hex')).toBe(Buffer.from(child.chainCode).toString('hex'));
  });
  test('some of them are public steps', () => expect(publicSteps.length).toBeGreaterThanOrEqual(4));
});

describe('BIP84 vectors', () => {
  // BIP84 serialises with zprv/zpub version bytes; the keys underneath are what we compare.
  const zNet = { ...networks.bitcoin, bip32: { public: 0x04b24746, private: 0x04b2430c } };
  const seed = mnemonicToSeed(bip84v.mnemonic);

  test('root and account keys', () => {
    const root = PrivateNode.fromSeed(seed);
    expect(fieldsOf(root)).toEqual(xprvFields(bip84v.rootpriv));
    expect(serializeXpub(root, zNet.bip32.public)).toBe(bip84v.rootpub);
    expect(accountPath('mainnet')).toBe(bip84v.account0.path);
    const account = accountNode(seed, 'mainnet');
    expect(fieldsOf(account)).toEqual(xprvFields(bip84v.account0.xprv));
    expect(serializeXpub(account, zNet.bip32.public)).toBe(bip84v.account0.xpub);
    // The account's zpub, written by the wallet itself from its xpub.
    expect(accountZpub(accountXpub(seed, 'mainnet'), 'mainnet')).toBe(bip84v.account0.xpub);
  });

  test.each(bip84v.addresses as { path: string; privkey_wif: string; pubkey: string; address: string }[])('$path', (v) => {
    const [chain, index] = v.path.split('/').slice(-2).map(Number) as [number, number];
    const account = accountNode(seed, 'mainnet');
    // From the seed's node, and from the xpub alone as `wallet balance` derives.
    for (const from of [account, accountFromXpub(accountXpub(seed, 'mainnet'), 'mainnet')]) {
      const a = deriveAddress(from, 'mainnet', chain === 0 ? RECEIVE : CHANGE, index);
      expect(a.path).toBe(v.path);
      expect(a.address).toBe(v.address);
      expect(Buffer.from(a.pubkey).toString('hex')).toBe(v.pubkey);
    }
    const priv = account.derive(chain).derive(index).privateKey;
    expect(ECPairFactory(ecc).fromWIF(v.privkey_wif).privateKey).toEqual(priv);
  });

  test('test networks use coin type 1', () => {
    expect(accountPath('regtest')).toBe("m/84'/1'/0'");
    expect(accountPath('testnet')).toBe("m/84'/1'/0'");
    expect(accountPath('signet')).toBe("m/84'/1'/0'");
  });
});
