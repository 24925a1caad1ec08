/**
 * An account's extended public key (a BIP32 xpub) and its public children, without the bip32
 * library or tiny-secp256k1. A command that only reads the wallet (`wallet balance`) derives
 * forty addresses or more; cold in a new process, making the bip32 library (it checks the
 * curve library first) and tiny-secp256k1's WebAssembly (about 0.7 ms a point addition
 * before it warms up) were a third of the command. Here G·IL is Node's own scalar
 * multiplication (OpenSSL, native from the first call; @noble/curves' where Node's OpenSSL
 * lacks the curve) and the point addition and encodings are @noble/curves' (audited, plain
 * JavaScript, nothing to compile). The child step (the HMAC, IL's range) is xprv.ts's too.
 */
import { createECDH, createHash, createHmac, getCurves } from 'node:crypto';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import bs58check from 'bs58check';
import { SwarmpayError } from '../errors.js';
import { isCompressedPoint } from '../bitcoin/ecc.js';
import type { NetworkName } from '../bitcoin/network-names.js';

const Point = secp256k1.Point;
type Point = InstanceType<typeof Point>;
const Fn = Point.Fn;

/** What public derivation needs: the bip32 library's nodes have it too. */
export interface PublicNode {
  publicKey: Uint8Array;
  chainCode: Uint8Array;
}

/** An extended public key's fields (BIP32 "Serialization format"). */
export interface ExtendedPublicKey extends PublicNode {
  depth: number;
  parentFingerprint: number;
  index: number;
}

/** xpub on mainnet, tpub on the test networks (bitcoinjs' `bip32.public` of each). */
export function xpubVersion(network: NetworkName): number {
  return network === 'mainnet' ? 0x0488b21e : 0x043587cf;
}

/** The first hardened index (BIP32 writes it i_H, paths i'). */
export const HARDENED = 0x80000000;
/** An extended key is 111 base58 characters: anything much longer is not one. */
const MAX_BASE58 = 120;

/** The payload of a base58check string, or null when it is not one (a bad character or checksum). */
function fromBase58check(s: string): Buffer | null {
  if (s.length > MAX_BASE58) return null;
  const bytes = bs58check.decodeUnsafe(s);
  return bytes === undefined ? null : Buffer.from(bytes);
}

function badXpub(reason: string): SwarmpayError {
  return new SwarmpayError('KEYSTORE_CORRUPT', `the keystore's account key is not an extended public key: ${reason}`, { hint: 'restore the wallet from its mnemonic into a new datadir' });
}

/** The xpub (tpub) `s` of `network`, checked as the bip32 library checks it. */
export function parseXpub(s: string, network: NetworkName): ExtendedPublicKey {
  const payload = fromBase58check(s);
  if (payload === null) throw badXpub('not base58check');
  if (payload.length !== 78) throw badXpub(`${payload.length} bytes, not 78`);
  if (payload.readUInt32BE(0) !== xpubVersion(network)) throw badXpub(`not an extended public key of ${network}`);
  const depth = payload[4]!;
  const parentFingerprint = payload.readUInt32BE(5);
  const index = payload.readUInt32BE(9);
  if (depth === 0 && (parentFingerprint !== 0 || index !== 0)) throw badXpub('a master key with a parent');
  const publicKey = payload.subarray(45);
  if (!isCompressedPoint(publicKey)) throw badXpub('the key is not a compressed point of secp256k1');
  return { depth, parentFingerprint, index, chainCode: payload.subarray(13, 45), publicKey };
}

/** The 78 bytes of `key` under `version` (xpub, zpub…), base58check. */
export function serializeXpub(key: ExtendedPublicKey, version: number): string {
  const payload = Buffer.alloc(78);
  payload.writeUInt32BE(version, 0);
  payload.writeUInt8(key.depth, 4);
  payload.writeUInt32BE(key.parentFingerprint, 5);
  payload.writeUInt32BE(key.index, 9);
  payload.set(key.chainCode, 13);
  payload.set(key.publicKey, 45);
  return bs58check.encode(payload);
}

let nativeSecp256k1: boolean | undefined;

/**
 * Whether Node's OpenSSL has secp256k1: some distributions build Node on a system OpenSSL
 * that leaves it out, and there noble's multiplication (tens of ms to set up, then fast)
 * serves. Asked when first needed, of the Node that runs (not the one a snapshot was built by).
 */
function hasNativeSecp256k1(): boolean {
  return (nativeSecp256k1 ??= getCurves().includes('secp256k1'));
}

/** G·k for a scalar k in [1, n) (big-endian, 32 bytes). */
export function basePoint(k: Uint8Array, native = hasNativeSecp256k1()): Point {
  if (!native) return Point.BASE.multiply(BigInt('0x' + Buffer.from(k).toString('hex')));
  const ecdh = createECDH('secp256k1');
  ecdh.setPrivateKey(k);
  return Point.fromBytes(ecdh.getPublicKey());
}

/** Each parent's point, decompressed once: an address scan derives dozens of children of one chain node. */
const points = new WeakMap<Uint8Array, Point>();

function pointOf(publicKey: Uint8Array): Point {
  let p = points.get(publicKey);
  if (p === undefined) points.set(publicKey, (p = Point.fromBytes(publicKey)));
  return p;
}

/** RIPEMD160(SHA256(data)): a key's BIP32 identifier (its first 4 bytes the fingerprint), and a P2WPKH program. */
export function hash160(data: Uint8Array): Buffer {
  return createHash('ripemd160').update(createHash('sha256').update(data).digest()).digest();
}

/** One child step's HMAC output: IL, the tweak (bytes and scalar), and IR, the child's chain code. */
export interface ChildStep {
  il: Buffer;
  tweak: bigint;
  chainCode: Buffer;
}

/**
 * HMAC-SHA512 of step `index` from a parent's chain code over `key`, 33 bytes: serP(K) for a
 * normal child, 0x00‖ser256(k) for a hardened one (CKDpriv only). Null where IL is 0 or not
 * below the curve order: BIP32 says there is no child at that index.
 */
export function childStep(chainCode: Uint8Array, key: Uint8Array, index: number): ChildStep | null {
  const data = Buffer.alloc(37);
  data.set(key, 0);
  data.writeUInt32BE(index, 33);
  const I = createHmac('sha512', chainCode).update(data).digest();
  const il = I.subarray(0, 32);
  const tweak = Fn.fromBytes(il, true);
  return Fn.isValidNot0(tweak) ? { il, tweak, chainCode: I.subarray(32) } : null;
}

/**
 * Child `index` of `parent` (BIP32 CKDpub, index below 2^31). Where BIP32 says the child is
 * invalid (IL not below the curve order, or the point at infinity; about 2^-127) the next
 * index is taken, as the bip32 library's `derive` does, so both give the same key.
 */
export function publicChild(parent: PublicNode, index: number): PublicNode {
  for (let i = index; i < HARDENED; i++) {
    const step = childStep(parent.chainCode, parent.publicKey, i);
    if (step === null) continue;
    const child = pointOf(parent.publicKey).add(basePoint(step.il));
    if (child.is0()) continue;
    return { publicKey: child.toBytes(true), chainCode: step.chainCode };
  }
  throw new RangeError(`no public child of this key from index ${index} below the hardened range`);
}
