/**
 * The TPM 2.0 wire format (TCG Part 1, 18; Part 2 structures): big-endian integers,
 * TPM2B sized buffers, TPML lists. Writer and Reader are the only code that touches
 * bytes; every structure below is one write function and one read function beside it.
 */
import { createHash } from 'node:crypto';
import { TPM_ALG, TPM_ST } from './constants.js';

export class MarshalError extends Error {}

export class Writer {
  private chunks: Buffer[] = [];
  private length = 0;

  u8(v: number): this {
    return this.push(Buffer.from([v & 0xff]));
  }
  u16(v: number): this {
    const b = Buffer.alloc(2);
    b.writeUInt16BE(v);
    return this.push(b);
  }
  u32(v: number): this {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(v >>> 0);
    return this.push(b);
  }
  u64(v: bigint): this {
    const b = Buffer.alloc(8);
    b.writeBigUInt64BE(v);
    return this.push(b);
  }
  bytes(b: Uint8Array): this {
    return this.push(Buffer.from(b));
  }
  /** TPM2B: a u16 size, then the bytes. */
  tpm2b(b: Uint8Array): this {
    if (b.length > 0xffff) throw new MarshalError(`TPM2B of ${b.length} bytes is too large`);
    return this.u16(b.length).bytes(b);
  }
  /** A TPM2B wrapping a structure (TPM2B_PUBLIC, TPM2B_SENSITIVE_CREATE, TPM2B_NV_PUBLIC). */
  sized(write: (w: Writer) => void): this {
    const inner = new Writer();
    write(inner);
    return this.tpm2b(inner.done());
  }
  /** A structure preceded by its u32 size (the command's authorization area). */
  sized32(write: (w: Writer) => void): this {
    const inner = new Writer();
    write(inner);
    const b = inner.done();
    return this.u32(b.length).bytes(b);
  }
  done(): Buffer {
    return Buffer.concat(this.chunks, this.length);
  }
  private push(b: Buffer): this {
    this.chunks.push(b);
    this.length += b.length;
    return this;
  }
}

export class Reader {
  private off = 0;
  constructor(private readonly buf: Uint8Array) {}

  private take(n: number): Buffer {
    if (this.off + n > this.buf.length) throw new MarshalError(`truncated: wanted ${n} bytes at offset ${this.off} of ${this.buf.length}`);
    const b = Buffer.from(this.buf.subarray(this.off, this.off + n));
    this.off += n;
    return b;
  }
  u8(): number {
    return this.take(1).readUInt8();
  }
  u16(): number {
    return this.take(2).readUInt16BE();
  }
  u32(): number {
    return this.take(4).readUInt32BE();
  }
  u64(): bigint {
    return this.take(8).readBigUInt64BE();
  }
  bytes(n: number): Buffer {
    return this.take(n);
  }
  tpm2b(): Buffer {
    return this.take(this.u16());
  }
  /** Reads a TPM2B and parses its contents as one structure, which must fill it exactly. */
  sized<T>(read: (r: Reader) => T): T {
    const inner = new Reader(this.tpm2b());
    const v = read(inner);
    inner.end();
    return v;
  }
  /** Parses the whole remaining buffer as one structure. */
  sizedAll<T>(read: (r: Reader) => T): T {
    const v = read(this);
    this.end();
    return v;
  }
  rest(): Buffer {
    return this.take(this.buf.length - this.off);
  }
  /** Asserts the buffer was consumed exactly: trailing bytes mean a parse went wrong. */
  end(): void {
    if (this.off !== this.buf.length) throw new MarshalError(`${this.buf.length - this.off} unexpected trailing bytes`);
  }
}

// --- digests ------------------------------------------------------------------------

const DIGEST_SIZES: Record<number, number> = { [TPM_ALG.SHA1]: 20, [TPM_ALG.SHA256]: 32, [TPM_ALG.SHA384]: 48, [TPM_ALG.SHA512]: 64 };
const DIGEST_NAMES: Record<number, string> = { [TPM_ALG.SHA1]: 'sha1', [TPM_ALG.SHA256]: 'sha256', [TPM_ALG.SHA384]: 'sha384', [TPM_ALG.SHA512]: 'sha512' };

export function digestSize(alg: number): number {
  const n = DIGEST_SIZES[alg];
  if (n === undefined) throw new MarshalError(`unsupported hash algorithm 0x${alg.toString(16)}`);
  return n;
}

/** node:crypto's name for a TPM hash algorithm. */
export function hashName(alg: number): string {
  const n = DIGEST_NAMES[alg];
  if (n === undefined) throw new MarshalError(`unsupported hash algorithm 0x${alg.toString(16)}`);
  return n;
}

// --- PCR selections (Part 2, 10.6.2 TPMS_PCR_SELECTION; 10.9.7 TPML_PCR_SELECTION) -----

export interface PcrSelection {
  hash: number;
  pcrs: number[];
}

/** PCR_SELECT_MIN: PC Client TPMs have 24 PCRs, three bytes of bitmap. */
const PCR_SELECT_BYTES = 3;

export function writePcrSelections(w: Writer, sels: PcrSelection[]): void {
  w.u32(sels.length);
  for (const s of sels) {
    const bitmap = Buffer.alloc(PCR_SELECT_BYTES);
    for (const p of s.pcrs) {
      if (!Number.isInteger(p) || p < 0 || p >= PCR_SELECT_BYTES * 8) throw new MarshalError(`PCR ${p} is out of range`);
      bitmap[p >> 3]! |= 1 << (p & 7);
    }
    w.u16(s.hash).u8(PCR_SELECT_BYTES).bytes(bitmap);
  }
}

export function readPcrSelections(r: Reader): PcrSelection[] {
  const n = r.u32();
  if (n > 16) throw new MarshalError(`${n} PCR banks is implausible`);
  const out: PcrSelection[] = [];
  for (let i = 0; i < n; i++) {
    const hash = r.u16();
    const bitmap = r.bytes(r.u8());
    const pcrs: number[] = [];
    bitmap.forEach((byte, k) => {
      for (let bit = 0; bit < 8; bit++) if (byte & (1 << bit)) pcrs.push(k * 8 + bit);
    });
    out.push({ hash, pcrs });
  }
  return out;
}

/** TPML_DIGEST: a count, then TPM2B_DIGESTs. */
export function readDigestList(r: Reader): Buffer[] {
  const n = r.u32();
  if (n > 8) throw new MarshalError(`TPML_DIGEST of ${n} entries`);
  return Array.from({ length: n }, () => r.tpm2b());
}

// --- public areas (Part 2, 12.2.4 TPMT_PUBLIC) ----------------------------------------

/** TPMT_SYM_DEF(_OBJECT) other than NULL: a block cipher, its key size and mode (AES-128-CFB in swarmpay). */
export interface SymDef {
  alg: number;
  keyBits: number;
  mode: number;
}

/** What ECC and RSA keys share: the storage cipher and the signing or decryption scheme. */
interface AsymmetricParms {
  /** TPMT_SYM_DEF_OBJECT: AES-128-CFB for storage keys, NULL otherwise. */
  symmetric: SymDef | null;
  /** The key's scheme: e.g. ECDSA with SHA-256 for signing keys, NULL for storage keys. */
  scheme: { alg: number; hash: number } | null;
}

export interface EccParms extends AsymmetricParms {
  type: typeof TPM_ALG.ECC;
  curve: number;
  x: Uint8Array;
  y: Uint8Array;
}

export interface KeyedHashParms {
  type: typeof TPM_ALG.KEYEDHASH;
  /** The unique field: for a sealed data object, a digest the TPM fills in. */
  unique: Uint8Array;
}

export interface RsaParms extends AsymmetricParms {
  type: typeof TPM_ALG.RSA;
  keyBits: number;
  exponent: number;
  modulus: Uint8Array;
}

export interface Public {
  nameAlg: number;
  attributes: number;
  authPolicy: Uint8Array;
  parms: EccParms | KeyedHashParms | RsaParms;
}

/** TPMT_SYM_DEF_OBJECT for keys, and TPMT_SYM_DEF for sessions: the same bytes for AES. */
export function writeSymDef(w: Writer, s: SymDef | null): void {
  if (s === null) w.u16(TPM_ALG.NULL);
  else w.u16(s.alg).u16(s.keyBits).u16(s.mode);
}

function readSymDef(r: Reader): SymDef | null {
  const alg = r.u16();
  return alg === TPM_ALG.NULL ? null : { alg, keyBits: r.u16(), mode: r.u16() };
}

function writeScheme(w: Writer, s: AsymmetricParms['scheme']): void {
  if (s === null) w.u16(TPM_ALG.NULL);
  else w.u16(s.alg).u16(s.hash);
}

/**
 * Schemes whose details are exactly one hash algorithm (Part 2, 11.2.x): RSASSA, RSAPSS,
 * OAEP, ECDSA, ECDH, SM2, ECSCHNORR, ECMQV, HMAC. Others (RSAES with none, ECDAA with a
 * count, XOR with a KDF) are refused rather than misread: swarmpay never makes them.
 */
const ONE_HASH_SCHEMES = new Set([0x0014, 0x0016, 0x0017, 0x0018, 0x0019, 0x001b, 0x001c, 0x001d, 0x0005]);

function readScheme(r: Reader): AsymmetricParms['scheme'] {
  const alg = r.u16();
  if (alg === TPM_ALG.NULL) return null;
  if (!ONE_HASH_SCHEMES.has(alg)) throw new MarshalError(`unsupported scheme 0x${alg.toString(16)}`);
  return { alg, hash: r.u16() };
}

export function writePublic(w: Writer, p: Public): void {
  w.u16(p.parms.type).u16(p.nameAlg).u32(p.attributes).tpm2b(p.authPolicy);
  const parms = p.parms;
  switch (parms.type) {
    case TPM_ALG.ECC:
      writeSymDef(w, parms.symmetric);
      writeScheme(w, parms.scheme);
      w.u16(parms.curve).u16(TPM_ALG.NULL); // kdf: none
      w.tpm2b(parms.x).tpm2b(parms.y);
      break;
    case TPM_ALG.RSA:
      writeSymDef(w, parms.symmetric);
      writeScheme(w, parms.scheme);
      w.u16(parms.keyBits).u32(parms.exponent).tpm2b(parms.modulus);
      break;
    case TPM_ALG.KEYEDHASH:
      w.u16(TPM_ALG.NULL); // TPMT_KEYEDHASH_SCHEME: NULL for sealed data
      w.tpm2b(parms.unique);
      break;
  }
}

export function readPublic(r: Reader): Public {
  const type = r.u16();
  const nameAlg = r.u16();
  const attributes = r.u32();
  const authPolicy = r.tpm2b();
  switch (type) {
    case TPM_ALG.ECC: {
      const symmetric = readSymDef(r);
      const scheme = readScheme(r);
      const curve = r.u16();
      // A key with a KDF could not be written back byte for byte (its name would differ).
      if (r.u16() !== TPM_ALG.NULL) throw new MarshalError('ECC keys with a KDF are not supported');
      return { nameAlg, attributes, authPolicy, parms: { type, symmetric, scheme, curve, x: r.tpm2b(), y: r.tpm2b() } };
    }
    case TPM_ALG.RSA: {
      const symmetric = readSymDef(r);
      const scheme = readScheme(r);
      const keyBits = r.u16();
      const exponent = r.u32();
      return { nameAlg, attributes, authPolicy, parms: { type, symmetric, scheme, keyBits, exponent, modulus: r.tpm2b() } };
    }
    case TPM_ALG.KEYEDHASH: {
      // Sealed data objects have no scheme; HMAC and XOR keys are not swarmpay's.
      if (r.u16() !== TPM_ALG.NULL) throw new MarshalError('keyed-hash objects with a scheme are not supported');
      return { nameAlg, attributes, authPolicy, parms: { type, unique: r.tpm2b() } };
    }
    default:
      throw new MarshalError(`unsupported public area type 0x${type.toString(16)}`);
  }
}

export function marshalPublic(p: Public): Buffer {
  const w = new Writer();
  writePublic(w, p);
  return w.done();
}

/** A name (Part 1, 16): nameAlg ‖ H(the marshalled public area), over the bytes as given. */
export function nameOfBytes(nameAlg: number, publicArea: Uint8Array): Buffer {
  return Buffer.concat([new Writer().u16(nameAlg).done(), createHash(hashName(nameAlg)).update(publicArea).digest()]);
}

/** An object's name, from its public area. */
export function nameOf(pub: Public): Buffer {
  return nameOfBytes(pub.nameAlg, marshalPublic(pub));
}

// --- attestation (Part 2, 10.12.8 TPMS_ATTEST; 11.3.4 TPMT_SIGNATURE) -----------------

export interface Attest {
  magic: number;
  type: number;
  qualifiedSigner: Buffer;
  extraData: Buffer;
  clock: { clock: bigint; resetCount: number; restartCount: number; safe: boolean };
  firmwareVersion: bigint;
  quote?: { pcrSelect: PcrSelection[]; pcrDigest: Buffer };
  certify?: { name: Buffer; qualifiedName: Buffer };
}

export function readAttest(r: Reader, expectType?: number): Attest {
  const magic = r.u32();
  const type = r.u16();
  if (expectType !== undefined && type !== expectType) throw new MarshalError(`attestation type 0x${type.toString(16)} is not 0x${expectType.toString(16)}`);
  const a: Attest = {
    magic,
    type,
    qualifiedSigner: r.tpm2b(),
    extraData: r.tpm2b(),
    clock: { clock: r.u64(), resetCount: r.u32(), restartCount: r.u32(), safe: r.u8() === 1 },
    firmwareVersion: r.u64(),
  };
  if (type === TPM_ST.ATTEST_QUOTE) a.quote = { pcrSelect: readPcrSelections(r), pcrDigest: r.tpm2b() };
  else if (type === TPM_ST.ATTEST_CERTIFY) a.certify = { name: r.tpm2b(), qualifiedName: r.tpm2b() };
  else throw new MarshalError(`unsupported attestation type 0x${type.toString(16)}`);
  return a;
}

export type Signature = { alg: typeof TPM_ALG.ECDSA; hash: number; r: Buffer; s: Buffer } | { alg: typeof TPM_ALG.RSASSA; hash: number; sig: Buffer };

export function readSignature(r: Reader): Signature {
  const alg = r.u16();
  if (alg === TPM_ALG.ECDSA) return { alg, hash: r.u16(), r: r.tpm2b(), s: r.tpm2b() };
  if (alg === TPM_ALG.RSASSA) return { alg, hash: r.u16(), sig: r.tpm2b() };
  throw new MarshalError(`unsupported signature algorithm 0x${alg.toString(16)}`);
}

export function writeSignature(w: Writer, s: Signature): void {
  w.u16(s.alg).u16(s.hash);
  if (s.alg === TPM_ALG.ECDSA) w.tpm2b(s.r).tpm2b(s.s);
  else w.tpm2b(s.sig);
}
