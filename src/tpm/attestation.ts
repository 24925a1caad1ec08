/**
 * Remote attestation: `attest` has the TPM quote PCRs with a verifier's nonce and writes
 * the result as a self-contained JSON document; `verifyAttestation` checks such a document
 * with nothing but node:crypto, so a verifier needs no TPM. What a valid document proves:
 * a restricted TPM key (the AK) signed these PCR values after the verifier chose the nonce.
 * Which device that key lives in is only known when the verifier pins the AK (`opts.ak`),
 * or finds it among the AKs it enrolled (`verifyEnrolledAttestation`, see enroll.ts).
 */
import { constants, createHash, createPublicKey, timingSafeEqual, verify, type KeyObject } from 'node:crypto';
import { SwarmpayError } from '../errors.js';
import { ShapeError, asObj, hex, obj, str, type Obj } from '../util/shape.js';
import { TPM_ALG, TPM_ECC_NIST_P256, TPM_GENERATED_VALUE, TPM_ST, TPMA_OBJECT } from './constants.js';
import { MarshalError, Reader, Writer, marshalPublic, nameOfBytes, readAttest, readPublic, readSignature, writeSignature, type Attest, type Public, type Signature } from './marshal.js';
import type { Tpm } from './tpm.js';
import type { TrustedIdentity } from './trust-store.js';

/** The PC Client boot-chain PCRs: what a peer usually wants to see. */
export const DEFAULT_QUOTE_PCRS = [0, 1, 2, 3, 4, 5, 6, 7];

const ATTESTATION_FORMAT = 'swarmpay-attestation';
const ATTESTATION_VERSION = 1;

/** The document `swarmpay tpm attest` writes; every byte string is lowercase hex. */
export interface AttestationDoc {
  format: typeof ATTESTATION_FORMAT;
  version: typeof ATTESTATION_VERSION;
  nonce: string;
  /** The quoted PCRs' values, read right after the quote; keys are PCR numbers. */
  pcrs: { hash: 'sha256'; values: Record<string, string> };
  /** The TPMS_ATTEST the AK signed. */
  quote: string;
  /** The marshalled TPMT_SIGNATURE. */
  signature: string;
  /** The AK as an SPKI PEM, for tools such as tpm2_checkquote and openssl. */
  akPublic: string;
  /** The AK's marshalled TPMT_PUBLIC: its attributes show it is a restricted TPM key. */
  akPublicArea: string;
  /** nameAlg || H(TPMT_PUBLIC): how the TPM itself names the AK. */
  akName: string;
}

/** PCR number → the values a verifier accepts for it (JSON: a hex string or a list of them). */
export type PcrAllowList = Record<string, string | string[]>;

export interface VerifiedAttestation {
  akName: string;
  /** Whether the AK was pinned; if not, the document only proves it is self-consistent. */
  akPinned: boolean;
  /** PCR number → SHA-256 value, as quoted. */
  pcrs: Record<string, string>;
  /** The TPM's clock at the quote: milliseconds (decimal, a u64), and its reset and restart counts. */
  clock: { clockMs: string; resetCount: number; restartCount: number; safe: boolean };
  /** As `swarmpay tpm info` shows it: TPM_PT_FIRMWARE_VERSION_1 and _2 as four 16-bit parts. */
  firmwareVersion: string;
}

/** PC Client TPMs have 24 PCRs per bank. */
const PCR_COUNT = 24;
/** A SHA-512 digest's worth: every TPM's TPM2B_DATA (sized like a TPMT_HA) holds that much. */
const MAX_NONCE = 64;
/** Quotes retried when a PCR changes between the quote and the read of its value. */
const QUOTE_ATTEMPTS = 3;
const PCR_KEY = /^(0|[1-9][0-9]?)$/;

// --- the AK's public key ------------------------------------------------------------

const b64url = (b: Uint8Array) => Buffer.from(b).toString('base64url');

/** A big-endian unsigned integer left-padded to `n` bytes; null if it does not fit. */
function padTo(b: Uint8Array, n: number): Buffer | null {
  if (b.length > n) return null;
  return Buffer.concat([Buffer.alloc(n - b.length), b]);
}

function invalid(message: string, hint = 'the document was altered, or was not made by `swarmpay tpm attest`'): SwarmpayError {
  return new SwarmpayError('ATTESTATION_INVALID', message, { hint });
}

/** The key of an ECC P-256 or RSA public area, as node:crypto takes it. */
function publicKeyOf(pub: Public): KeyObject {
  const p = pub.parms;
  if (p.type === TPM_ALG.ECC) {
    if (p.curve !== TPM_ECC_NIST_P256) throw invalid(`the AK uses ECC curve 0x${p.curve.toString(16)}; swarmpay verifies NIST P-256 AKs`);
    const x = padTo(p.x, 32);
    const y = padTo(p.y, 32);
    if (!x || !y) throw invalid('the AK public area has an ECC point larger than P-256');
    try {
      return createPublicKey({ key: { kty: 'EC', crv: 'P-256', x: b64url(x), y: b64url(y) }, format: 'jwk' });
    } catch (e) {
      throw invalid(`the AK public area is not a P-256 key: ${(e as Error).message}`);
    }
  }
  if (p.type === TPM_ALG.RSA) {
    // An exponent of 0 in a TPMS_RSA_PARMS means the default, 2^16 + 1 (Part 2, 12.2.3.5).
    const e = Buffer.alloc(4);
    e.writeUInt32BE(p.exponent === 0 ? 0x10001 : p.exponent);
    try {
      return createPublicKey({ key: { kty: 'RSA', n: b64url(p.modulus), e: b64url(e.subarray(e.findIndex((v) => v !== 0))) }, format: 'jwk' });
    } catch (err) {
      throw invalid(`the AK public area is not an RSA key: ${(err as Error).message}`);
    }
  }
  throw invalid('the AK public area is not a signing key type (ECC or RSA)');
}

const spki = (k: KeyObject) => k.export({ type: 'spki', format: 'der' });

/** The AK's SubjectPublicKeyInfo PEM, from its TPMT_PUBLIC. */
export function akPem(pub: Public): string {
  return publicKeyOf(pub).export({ type: 'spki', format: 'pem' }).toString();
}

/** The SPKI DER of a PEM public key (or of a private key's public half); null if it is neither. */
function spkiOfPem(pem: string): Buffer | null {
  try {
    return spki(createPublicKey(pem));
  } catch {
    return null;
  }
}

/** Whether `pem` is the key of `pub`: the check that an AK PEM and a TPMT_PUBLIC agree. */
export function pemMatchesPublic(pem: string, pub: Public): boolean {
  const der = spkiOfPem(pem);
  return der !== null && der.equals(spki(publicKeyOf(pub)));
}

// --- producing a document ------------------------------------------------------------

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest();

/** The quote's pcrDigest, recomputed from values: H(values in ascending PCR order). */
function pcrDigestOf(values: Map<number, Uint8Array>): Buffer {
  return sha256(Buffer.concat([...values.entries()].sort(([a], [b]) => a - b).map(([, v]) => v)));
}

function marshalSignature(s: Signature): Buffer {
  const w = new Writer();
  writeSignature(w, s);
  return w.done();
}

/**
 * Quotes `pcrs` (SHA-256 bank) with `nonce` and returns the attestation document. The PCR
 * values are read just after the quote; a PCR extended in between would make the document
 * fail verification, so that race is detected here and the quote taken again.
 */
export async function attest(tpm: Tpm, nonce: Uint8Array, pcrs: number[]): Promise<AttestationDoc> {
  if (nonce.length === 0 || nonce.length > MAX_NONCE) {
    throw new SwarmpayError('USAGE', `the nonce is ${nonce.length} bytes; it must be 1 to ${MAX_NONCE}`, { hint: 'use the nonce the verifier gave you, e.g. 32 random bytes as hex' });
  }
  if (pcrs.length === 0 || !pcrs.every((p) => Number.isInteger(p) && p >= 0 && p < PCR_COUNT)) {
    throw new SwarmpayError('USAGE', `PCRs ${pcrs.join(',') || '(none)'}: a quote needs one or more PCRs from 0 to ${PCR_COUNT - 1}`, { hint: 'for example --pcrs 0,7' });
  }
  for (let attempt = 1; ; attempt++) {
    const q = await tpm.quote(nonce, pcrs);
    let quoted: Attest;
    try {
      quoted = new Reader(q.attest).sizedAll((r) => readAttest(r, TPM_ST.ATTEST_QUOTE));
    } catch (e) {
      if (!(e instanceof MarshalError)) throw e;
      throw new SwarmpayError('TPM_PROTOCOL', `the TPM's quote is malformed: ${e.message}`, { hint: 'is this really a TPM 2.0? check --tpm' });
    }
    if (pcrDigestOf(q.pcrValues).equals(quoted.quote!.pcrDigest)) {
      const values = [...q.pcrValues.entries()].sort(([a], [b]) => a - b);
      return {
        format: ATTESTATION_FORMAT,
        version: ATTESTATION_VERSION,
        nonce: Buffer.from(nonce).toString('hex'),
        pcrs: { hash: 'sha256', values: Object.fromEntries(values.map(([p, v]) => [String(p), v.toString('hex')])) },
        quote: q.attest.toString('hex'),
        signature: marshalSignature(q.signature).toString('hex'),
        akPublic: akPem(q.akPublic),
        akPublicArea: marshalPublic(q.akPublic).toString('hex'),
        akName: q.akName.toString('hex'),
      };
    }
    if (attempt === QUOTE_ATTEMPTS) {
      throw new SwarmpayError('ATTESTATION_INVALID', `PCRs ${pcrs.join(',')} changed between quote and read ${QUOTE_ATTEMPTS} times in a row`, {
        hint: 'something keeps extending these PCRs; wait until it stops and attest again',
      });
    }
  }
}

// --- checking a document --------------------------------------------------------------

/** The document's fields, shape-checked; byte strings decoded. */
interface ParsedDoc {
  nonce: Buffer;
  values: Map<number, Buffer>;
  quote: Buffer;
  signature: Buffer;
  akPublic: string;
  akPublicArea: Buffer;
  akName: Buffer;
}

function parseDoc(v: unknown): ParsedDoc {
  const d = asObj(v, 'attestation');
  if (d.format !== ATTESTATION_FORMAT) throw new ShapeError(`attestation.format must be "${ATTESTATION_FORMAT}"`);
  if (d.version !== ATTESTATION_VERSION) throw new ShapeError(`attestation.version ${String(d.version)} is not supported (this swarmpay reads version ${ATTESTATION_VERSION})`);
  const pcrs = obj(d, 'pcrs', 'attestation');
  if (pcrs.hash !== 'sha256') throw new ShapeError('attestation.pcrs.hash must be "sha256"');
  const raw = obj(pcrs, 'values', 'attestation.pcrs');
  const values = new Map<number, Buffer>();
  for (const k of Object.keys(raw)) {
    if (!PCR_KEY.test(k) || Number(k) >= PCR_COUNT) throw new ShapeError(`attestation.pcrs.values: "${k}" is not a PCR number 0-${PCR_COUNT - 1}`);
    values.set(Number(k), Buffer.from(hex(raw, k, 'attestation.pcrs.values', 32), 'hex'));
  }
  if (values.size === 0) throw new ShapeError('attestation.pcrs.values lists no PCR');
  const bytes = (o: Obj, k: string) => {
    const h = hex(o, k, 'attestation');
    if (h.length === 0) throw new ShapeError(`attestation.${k} is empty`);
    return Buffer.from(h, 'hex');
  };
  return {
    nonce: bytes(d, 'nonce'),
    values,
    quote: bytes(d, 'quote'),
    signature: bytes(d, 'signature'),
    akPublic: str(d, 'akPublic', 'attestation'),
    akPublicArea: bytes(d, 'akPublicArea'),
    akName: bytes(d, 'akName'),
  };
}

/** Parses one whole structure from bytes; a MarshalError becomes ATTESTATION_INVALID naming `what`. */
function parseAll<T>(bytes: Buffer, what: string, read: (r: Reader) => T): T {
  try {
    return new Reader(bytes).sizedAll(read);
  } catch (e) {
    if (e instanceof MarshalError) throw invalid(`${what} does not parse: ${e.message}`);
    throw e;
  }
}

/** The AK public area, checked to be a key the TPM made and uses only to sign what it generated. */
function checkAk(doc: ParsedDoc): { pub: Public; key: KeyObject } {
  const pub = parseAll(doc.akPublicArea, 'akPublicArea (TPMT_PUBLIC)', readPublic);
  // fixedTPM: the private key never leaves the TPM. restricted + sign: the TPM signs with it
  // only digests of structures it generated itself (starting with TPM_GENERATED_VALUE); an
  // unrestricted key would sign any bytes, a forged TPMS_ATTEST among them.
  const missing = (['fixedTPM', 'restricted', 'sign'] as const).filter((a) => (pub.attributes & TPMA_OBJECT[a]) === 0);
  if (missing.length > 0) throw invalid(`the AK is not a restricted TPM signing key: its attributes lack ${missing.join(', ')}, so it could sign a forged quote`);
  let name: Buffer;
  try {
    // Hashed as the document holds it, not re-marshalled: the name covers the exact bytes.
    name = nameOfBytes(pub.nameAlg, doc.akPublicArea);
  } catch (e) {
    if (!(e instanceof MarshalError)) throw e;
    throw invalid(`the AK's name algorithm 0x${pub.nameAlg.toString(16)} is not supported`);
  }
  if (!name.equals(doc.akName)) throw invalid(`akName ${doc.akName.toString('hex')} is not the name of akPublicArea (${name.toString('hex')})`);
  const key = publicKeyOf(pub);
  if (!pemMatchesPublic(doc.akPublic, pub)) throw invalid('akPublic is not the key of akPublicArea: the PEM was swapped, or is not a PEM public key');
  return { pub, key };
}

function signatureValid(key: KeyObject, pub: Public, sig: Signature, data: Buffer): boolean {
  if (sig.hash !== TPM_ALG.SHA256) throw invalid(`the quote is signed with hash 0x${sig.hash.toString(16)}; swarmpay verifies SHA-256 quotes`);
  try {
    if (sig.alg === TPM_ALG.ECDSA && pub.parms.type === TPM_ALG.ECC) {
      const r = padTo(sig.r, 32);
      const s = padTo(sig.s, 32);
      return r !== null && s !== null && verify('sha256', data, { key, dsaEncoding: 'ieee-p1363' }, Buffer.concat([r, s]));
    }
    if (sig.alg === TPM_ALG.RSASSA && pub.parms.type === TPM_ALG.RSA) {
      return verify('sha256', data, { key, padding: constants.RSA_PKCS1_PADDING }, sig.sig);
    }
  } catch {
    return false; // malformed signature bytes (e.g. of the wrong length) are a bad signature
  }
  throw invalid(`a signature of algorithm 0x${sig.alg.toString(16)} does not fit the AK's key type`);
}

const pcrList = (ps: Iterable<number>) => [...ps].join(',') || '(none)';

/** Lowercase hex without 0x, 32 bytes: how PCR values are compared. */
function normalizePcrValue(v: unknown, where: string): string {
  const h = typeof v === 'string' ? v.replace(/^0x/i, '').toLowerCase() : '';
  if (!/^[0-9a-f]{64}$/.test(h)) throw new SwarmpayError('INVALID_FILE', `the PCR allow list's ${where} must be a SHA-256 value: 64 hex digits`, { hint: 'write it as {"7": "<hex>"} or {"7": ["<hex>", ...]}' });
  return h;
}

/** Checks an allow list and brings every value to lowercase hex, each PCR to a list. */
function normalizeAllowList(v: unknown): Map<number, Set<string>> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    throw new SwarmpayError('INVALID_FILE', 'the PCR allow list must be a JSON object of PCR number to value(s)', { hint: 'for example {"0": "<hex>", "7": ["<hex>", "<hex>"]}' });
  }
  const out = new Map<number, Set<string>>();
  for (const [k, val] of Object.entries(v)) {
    if (!PCR_KEY.test(k) || Number(k) >= PCR_COUNT) throw new SwarmpayError('INVALID_FILE', `the PCR allow list names "${k}", which is not a PCR 0-${PCR_COUNT - 1}`, { hint: 'keys are PCR numbers, e.g. "7"' });
    const list: unknown[] = Array.isArray(val) ? val : [val];
    if (list.length === 0) throw new SwarmpayError('INVALID_FILE', `the PCR allow list allows no value for PCR ${k}`, { hint: 'list one or more values, or leave the PCR out' });
    out.set(Number(k), new Set(list.map((x, i) => normalizePcrValue(x, Array.isArray(val) ? `PCR ${k} value ${i + 1}` : `PCR ${k}`))));
  }
  return out;
}

/** Reads a PCR allow list: JSON `{ "<pcr>": hex | [hex, ...] }`; hex may be upper case or 0x-prefixed. */
export function parsePcrAllowList(text: string): PcrAllowList {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new SwarmpayError('INVALID_FILE', `the PCR allow list is not JSON: ${(e as Error).message}`, { hint: 'write it as {"7": "<hex>"} or {"7": ["<hex>", ...]}' });
  }
  return Object.fromEntries([...normalizeAllowList(v)].map(([p, vals]) => [String(p), [...vals]]));
}

function firmwareString(v: bigint): string {
  const hi = Number(v >> 32n);
  const lo = Number(v & 0xffffffffn);
  return `${hi >>> 16}.${hi & 0xffff}.${lo >>> 16}.${lo & 0xffff}`;
}

/**
 * Verifies an attestation document against the nonce the verifier chose, and optionally the
 * AK it trusts (`ak`, a PEM) and the PCR values it accepts. Pure: no TPM is involved. Every
 * refusal is ATTESTATION_INVALID with what exactly failed.
 */
export function verifyAttestation(doc: unknown, opts: { nonce: Uint8Array; expectPcrs?: PcrAllowList; ak?: string }): VerifiedAttestation {
  if (opts.nonce.length === 0) throw new SwarmpayError('USAGE', 'verifying needs the nonce the quote was asked for', { hint: 'without a fresh nonce an old quote could be replayed' });
  const allow = opts.expectPcrs === undefined ? null : normalizeAllowList(opts.expectPcrs);
  if (opts.ak !== undefined && spkiOfPem(opts.ak) === null) {
    throw new SwarmpayError('INVALID_FILE', 'the pinned AK is not a PEM public key', { hint: 'pin the akPublic PEM of a document you trust from that TPM' });
  }

  let d: ParsedDoc;
  try {
    d = parseDoc(doc);
  } catch (e) {
    if (e instanceof ShapeError) throw invalid(`not an attestation document: ${e.message}`);
    throw e;
  }

  const { pub, key } = checkAk(d);
  if (opts.ak !== undefined && !pemMatchesPublic(opts.ak, pub)) {
    throw invalid(
      `the quote is signed by another TPM's attestation key (name ${d.akName.toString('hex')}), not the pinned one`,
      'the document comes from a different device than the one whose AK you pinned',
    );
  }

  const sig = parseAll(d.signature, 'signature (TPMT_SIGNATURE)', readSignature);
  if (!signatureValid(key, pub, sig, d.quote)) throw invalid("the AK's signature over the quote does not verify");

  // A restricted key signs only TPM-generated structures, so once the signature holds these
  // are checks of our reading of the bytes as much as of the TPM.
  const head = parseAll(d.quote.subarray(0, 6), 'quote (TPMS_ATTEST)', (r) => ({ magic: r.u32(), type: r.u16() }));
  if (head.magic !== TPM_GENERATED_VALUE) throw invalid(`the quote's magic is 0x${head.magic.toString(16)}, not TPM_GENERATED_VALUE: the TPM did not generate it`);
  if (head.type !== TPM_ST.ATTEST_QUOTE) throw invalid(`the signed structure is of type 0x${head.type.toString(16)}, not a quote (TPM_ST_ATTEST_QUOTE)`);
  const a = parseAll(d.quote, 'quote (TPMS_ATTEST)', (r) => readAttest(r, TPM_ST.ATTEST_QUOTE));
  const q = a.quote!;

  if (a.extraData.length !== opts.nonce.length || !timingSafeEqual(a.extraData, opts.nonce)) {
    throw invalid('the quote was made for another nonce: it is stale or replayed', 'ask the attester for a new quote with your nonce');
  }
  if (!d.nonce.equals(a.extraData)) throw invalid("the document's nonce field does not match the nonce in its quote");

  const docPcrs = [...d.values.keys()].sort((x, y) => x - y);
  const sel = q.pcrSelect.filter((s) => s.pcrs.length > 0);
  if (sel.length !== 1 || sel[0]!.hash !== TPM_ALG.SHA256 || pcrList(sel[0]!.pcrs) !== pcrList(docPcrs)) {
    const quoted = sel.map((s) => `0x${s.hash.toString(16)}:${pcrList(s.pcrs)}`).join(' ') || '(none)';
    throw invalid(`the quote covers PCRs ${quoted} but the document lists SHA-256 PCRs ${pcrList(docPcrs)}`);
  }
  if (!pcrDigestOf(d.values).equals(q.pcrDigest)) throw invalid(`the PCR values in the document are not the ones quoted (PCRs ${pcrList(docPcrs)})`);

  for (const [p, ok] of allow ?? []) {
    const v = d.values.get(p);
    if (v === undefined) throw invalid(`PCR ${p} is required by the allow list but not in the quote (it covers ${pcrList(docPcrs)})`, 'ask for a quote that includes every PCR of the allow list');
    if (!ok.has(v.toString('hex'))) throw invalid(`PCR ${p} is ${v.toString('hex')}, which the allow list does not allow`, 'the device booted into a state the allow list does not accept');
  }

  return {
    akName: d.akName.toString('hex'),
    akPinned: opts.ak !== undefined,
    pcrs: Object.fromEntries(docPcrs.map((p) => [String(p), d.values.get(p)!.toString('hex')])),
    clock: { clockMs: a.clock.clock.toString(), resetCount: a.clock.resetCount, restartCount: a.clock.restartCount, safe: a.clock.safe },
    firmwareVersion: firmwareString(a.firmwareVersion),
  };
}

/** What `verifyEnrolledAttestation` adds: the enrolled identity that vouches for the AK. */
export interface EnrolledAttestation extends VerifiedAttestation {
  vouchedBy: Pick<TrustedIdentity, 'akName' | 'label' | 'enrolledAt' | 'ek' | 'ca'>;
}

/**
 * Verifies a document as `verifyAttestation` does, and requires its AK to be one of the
 * `enrolled` identities (the trust store's, `listIdentities`): an AK proven, when it was
 * enrolled, to live in a TPM whose EK certificate chains to a CA the user trusts. The
 * document's AK name is looked up, and the document is then verified with that identity's
 * key pinned, so a document naming an enrolled AK but carrying another key fails too.
 */
export function verifyEnrolledAttestation(doc: unknown, opts: { nonce: Uint8Array; expectPcrs?: PcrAllowList; enrolled: readonly TrustedIdentity[] }): EnrolledAttestation {
  const claimed = typeof doc === 'object' && doc !== null && typeof (doc as Obj).akName === 'string' ? ((doc as Obj).akName as string) : null;
  const identity = claimed === null ? undefined : opts.enrolled.find((i) => i.akName === claimed);
  const base = { nonce: opts.nonce, ...(opts.expectPcrs === undefined ? {} : { expectPcrs: opts.expectPcrs }) };
  if (identity === undefined) {
    // Whatever else is wrong with the document is said first; a valid one is still refused.
    const v = verifyAttestation(doc, base);
    throw invalid(`the quote's AK (name ${v.akName}) is not enrolled: nothing ties it to a TPM you trust`, 'enroll the peer\'s TPM first (`swarmpay tpm enroll --peer HOST:PORT --tpm-ca FILE`), or pin its AK with --ak');
  }
  const v = verifyAttestation(doc, { ...base, ak: identity.akPublic });
  if (v.akName !== identity.akName) throw invalid(`the quote's AK name ${v.akName} is not the enrolled ${identity.akName}`);
  const { akName, label, enrolledAt, ek, ca } = identity;
  return { ...v, akPinned: true, vouchedBy: { akName, label, enrolledAt, ek, ca } };
}
