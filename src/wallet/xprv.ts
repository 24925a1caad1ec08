/**
 * The seed's BIP32 keys (CKDpriv) and their signatures, without the bip32 library: making
 * it (`BIP32Factory`) checks the curve library with a dozen tiny-secp256k1 operations before
 * deriving anything, 12 ms of a 180 ms `channel pay`. The steps are xpub.ts's: one HMAC
 * step for both kinds of child, Node's multiplication for each public key, @noble/curves'
 * scalar addition; signatures are ecc.ts's signDigest.
 */
import { createHmac } from 'node:crypto';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { signDigest } from '../bitcoin/ecc.js';
import type { NetworkName } from '../bitcoin/network-names.js';
import type { SpendSigner } from '../bitcoin/spend.js';
import { HARDENED, basePoint, childStep, hash160, serializeXpub, xpubVersion, type ExtendedPublicKey } from './xpub.js';

const Fn = secp256k1.Point.Fn;
const MAX_INDEX = 0xffffffff;
/** BIP32: "Generate a seed byte sequence S of a chosen length (between 128 and 512 bits)". */
const MIN_SEED_BYTES = 16;
const MAX_SEED_BYTES = 64;
/** The bip32 library's path grammar: m/, then indices, each hardened by a trailing '. */
const PATH = /^(m\/)?(\d+'?\/)*\d+'?$/;

/** A private extended key: derives private children, signs, and gives its xpub. */
export class PrivateNode implements ExtendedPublicKey, SpendSigner {
  #publicKey: Uint8Array | undefined;
  /**
   * Kept for its fingerprint, asked only of a key serialized: a hardened path (m/84'/1'/0')
   * then needs no public key along the way, and each is one of Node's multiplications.
   */
  readonly #parent: PrivateNode | null;

  private constructor(
    readonly privateKey: Uint8Array,
    readonly chainCode: Uint8Array,
    readonly depth: number,
    readonly index: number,
    parent: PrivateNode | null,
  ) {
    this.#parent = parent;
  }

  /** BIP32's master key of `seed` (16 to 64 bytes). */
  static fromSeed(seed: Uint8Array): PrivateNode {
    if (seed.length < MIN_SEED_BYTES || seed.length > MAX_SEED_BYTES) throw new RangeError(`a BIP32 seed is 16 to 64 bytes, not ${seed.length}`);
    const I = createHmac('sha512', 'Bitcoin seed').update(seed).digest();
    // Unlike a child, an invalid master has no next index to take: BIP32 says the seed is unusable.
    if (!Fn.isValidNot0(Fn.fromBytes(I.subarray(0, 32), true))) throw new RangeError('this seed has no BIP32 master key (IL is not in [1, n)): use another seed');
    return new PrivateNode(I.subarray(0, 32), I.subarray(32), 0, 0, null);
  }

  /** 33 bytes, compressed: computed once, as a normal child, the fingerprints and the xpub each need it. */
  get publicKey(): Uint8Array {
    return (this.#publicKey ??= basePoint(this.privateKey).toBytes(true));
  }

  get fingerprint(): Buffer {
    return hash160(this.publicKey).subarray(0, 4);
  }

  get parentFingerprint(): number {
    return this.#parent === null ? 0 : this.#parent.fingerprint.readUInt32BE(0);
  }

  /**
   * Child `index` (hardened from 2^31). Where BIP32 says the child is invalid (IL not below
   * the curve order, or a child key of 0; about 2^-127) the next index is taken, as the bip32
   * library's `derive` does, so both give the same key.
   */
  derive(index: number): PrivateNode {
    if (!Number.isInteger(index) || index < 0 || index > MAX_INDEX) throw new RangeError(`a BIP32 index is an integer in [0, 2^32), not ${index}`);
    const k = Fn.fromBytes(this.privateKey);
    for (let i = index; i <= MAX_INDEX; i++) {
      const step = childStep(this.chainCode, i >= HARDENED ? Buffer.concat([Buffer.alloc(1), this.privateKey]) : this.publicKey, i);
      if (step === null) continue;
      const child = Fn.add(step.tweak, k);
      if (Fn.is0(child)) continue;
      return new PrivateNode(Fn.toBytes(child), step.chainCode, this.depth + 1, i, this);
    }
    throw new RangeError(`no child of this key from index ${index}`);
  }

  /** The key at `path` ("m/84'/1'/0'" from the master, or "0/5" from this key). */
  derivePath(path: string): PrivateNode {
    if (!PATH.test(path)) throw new RangeError(`not a BIP32 path: ${path}`);
    if (path.startsWith('m/') && this.depth !== 0) throw new RangeError(`a path from m needs the master key, not a key of depth ${this.depth}`);
    return path
      .replace(/^m\//, '')
      .split('/')
      .reduce<PrivateNode>((node, step) => {
        const hardened = step.endsWith("'");
        const index = Number(hardened ? step.slice(0, -1) : step);
        if (index >= HARDENED) throw new RangeError(`index ${index} of ${path} is not below 2^31`);
        return node.derive(hardened ? index + HARDENED : index);
      }, this);
  }

  /** The extended public key (xpub, or tpub on the test networks). */
  xpub(network: NetworkName): string {
    return serializeXpub(this, xpubVersion(network));
  }

  /**
   * An ECDSA signature (64 bytes, r‖s) of `hash` by signDigest: the RFC 6979 nonce, as the bip32
   * library signs. With lowR, extra entropy counting up from 1 until r's first byte is below
   * 0x80, as the library grinds it, so both give the same signature.
   */
  sign(hash: Uint8Array, lowR = false): Uint8Array {
    let sig = signDigest(hash, this.privateKey);
    if (!lowR) return sig;
    const extraData = Buffer.alloc(32);
    for (let counter = 1; sig[0]! > 0x7f; counter++) {
      extraData.writeUInt32LE(counter, 0);
      sig = signDigest(hash, this.privateKey, extraData);
    }
    return sig;
  }
}
