/**
 * The TPM trust store: the attestation keys this wallet has enrolled (`tpm enroll`), each
 * proven to live in a TPM whose EK certificate chains to a CA the user trusts. A quote is
 * then trusted as a TPM's when its AK's name is here (attestation.ts,
 * verifyEnrolledAttestation). One JSON file per network, <datadir>/<network>/tpm-trust.json,
 * replaced atomically, mode 0600, changed under a lock.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { SwarmpayError, ioError } from '../errors.js';
import { writeFileAtomic } from '../util/atomic-file.js';
import { acquireLock } from '../util/file-lock.js';
import { ShapeError, asObj, hex, int, obj, str, type Obj } from '../util/shape.js';
import type { EkKind } from './identity.js';

const TRUST_STORE_FILE = 'tpm-trust.json';
const TRUST_STORE_FORMAT = 'swarmpay-tpm-trust';
const TRUST_STORE_VERSION = 1;

export interface TrustedIdentity {
  /** The AK's name (nameAlg ‖ H(TPMT_PUBLIC)), lowercase hex: the key of the store. */
  akName: string;
  /** The AK as an SPKI PEM, as attestation documents carry it. */
  akPublic: string;
  /** The AK's marshalled TPMT_PUBLIC, hex. */
  akPublicArea: string;
  label: string | null;
  /** ISO 8601. */
  enrolledAt: string;
  /** The EK certificate that vouched for the TPM. */
  ek: {
    kind: EkKind;
    subject: string;
    issuer: string;
    serial: string;
    /** SHA-256 of the DER, hex. */
    fingerprint: string;
    notAfter: string;
    /** The TPM the certificate names (manufacturer id, model, firmware), when it does. */
    tpm: { manufacturer: string; model: string; version: string } | null;
  };
  /** The trusted root the EK certificate chained to. */
  ca: { subject: string; fingerprint: string };
  /** The peer link key the identity was enrolled over (informational: the TPM, not the link, is what was proven). */
  peerKey: string | null;
}

interface TrustFile {
  format: typeof TRUST_STORE_FORMAT;
  version: typeof TRUST_STORE_VERSION;
  identities: TrustedIdentity[];
}

export function trustStorePath(networkDir: string): string {
  return path.join(networkDir, TRUST_STORE_FILE);
}

/** An AK name as the user may type it: lowercase hex, an optional 0x. */
function normalizeAkName(text: string): string {
  const h = text.trim().replace(/^0x/i, '').toLowerCase();
  if (!/^([0-9a-f]{2}){3,66}$/.test(h)) throw new SwarmpayError('USAGE', `"${text}" is not an AK name (hex, e.g. 000b… as \`swarmpay tpm trust list\` shows it)`);
  return h;
}

const EK_KIND_SET = new Set<string>(['rsa-2048', 'ecc-p256']);

function nullableStr(o: Obj, k: string, where: string): string | null {
  return o[k] === null ? null : str(o, k, where);
}

function parseIdentity(v: unknown, i: number): TrustedIdentity {
  const w = `identities[${i}]`;
  const o = asObj(v, w);
  const ek = obj(o, 'ek', w);
  const ca = obj(o, 'ca', w);
  const kind = str(ek, 'kind', `${w}.ek`);
  if (!EK_KIND_SET.has(kind)) throw new ShapeError(`${w}.ek.kind "${kind}" is not an EK kind swarmpay knows`);
  let tpm: TrustedIdentity['ek']['tpm'] = null;
  if (ek.tpm !== null && ek.tpm !== undefined) {
    const t = obj(ek, 'tpm', `${w}.ek`);
    tpm = { manufacturer: str(t, 'manufacturer', `${w}.ek.tpm`), model: str(t, 'model', `${w}.ek.tpm`), version: str(t, 'version', `${w}.ek.tpm`) };
  }
  return {
    akName: hex(o, 'akName', w),
    akPublic: str(o, 'akPublic', w),
    akPublicArea: hex(o, 'akPublicArea', w),
    label: nullableStr(o, 'label', w),
    enrolledAt: str(o, 'enrolledAt', w),
    ek: {
      kind: kind as EkKind,
      subject: str(ek, 'subject', `${w}.ek`),
      issuer: str(ek, 'issuer', `${w}.ek`),
      serial: str(ek, 'serial', `${w}.ek`),
      fingerprint: hex(ek, 'fingerprint', `${w}.ek`, 32),
      notAfter: str(ek, 'notAfter', `${w}.ek`),
      tpm,
    },
    ca: { subject: str(ca, 'subject', `${w}.ca`), fingerprint: hex(ca, 'fingerprint', `${w}.ca`, 32) },
    peerKey: o.peerKey === null || o.peerKey === undefined ? null : hex(o, 'peerKey', w, 32),
  };
}

function readStore(file: string): TrustFile {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { format: TRUST_STORE_FORMAT, version: TRUST_STORE_VERSION, identities: [] };
    throw ioError('read', file, e);
  }
  try {
    const o = asObj(JSON.parse(text), 'trust store');
    if (o.format !== TRUST_STORE_FORMAT) throw new ShapeError(`format is not "${TRUST_STORE_FORMAT}"`);
    int(o, 'version', 'trust store', TRUST_STORE_VERSION, TRUST_STORE_VERSION);
    if (!Array.isArray(o.identities)) throw new ShapeError('identities must be a list');
    return { format: TRUST_STORE_FORMAT, version: TRUST_STORE_VERSION, identities: o.identities.map(parseIdentity) };
  } catch (e) {
    if (e instanceof ShapeError || e instanceof SyntaxError) {
      throw new SwarmpayError('INVALID_FILE', `the TPM trust store ${file} is damaged: ${e.message}`, { hint: 'restore it from a backup, or move it away and enroll the peers again' });
    }
    throw e;
  }
}

/** Read-modify-write under the store's lock. */
function changeStore<R>(networkDir: string, f: (s: TrustFile) => R): R {
  const file = trustStorePath(networkDir);
  try {
    mkdirSync(networkDir, { recursive: true, mode: 0o700 });
  } catch (e) {
    throw ioError('create', networkDir, e);
  }
  const lock = acquireLock(`${file}.lock`, 'the TPM trust store');
  try {
    const s = readStore(file);
    const r = f(s);
    writeFileAtomic(file, JSON.stringify(s, null, 2) + '\n', 0o600);
    return r;
  } finally {
    lock.release();
  }
}

/** The enrolled identities, oldest first; none if there is no store yet. */
export function listIdentities(networkDir: string): TrustedIdentity[] {
  const file = trustStorePath(networkDir);
  return existsSync(file) ? readStore(file).identities : [];
}

/** The identity enrolled for this AK name, or null. */
export function lookupIdentity(networkDir: string, akName: string): TrustedIdentity | null {
  const name = normalizeAkName(akName);
  return listIdentities(networkDir).find((i) => i.akName === name) ?? null;
}

/** Records an identity; one already enrolled for the same AK is replaced (a re-enrollment: new label, new date). */
export function recordIdentity(networkDir: string, identity: TrustedIdentity): { replaced: boolean } {
  return changeStore(networkDir, (s) => {
    const at = s.identities.findIndex((i) => i.akName === identity.akName);
    if (at >= 0) s.identities[at] = identity;
    else s.identities.push(identity);
    return { replaced: at >= 0 };
  });
}

/** Removes the identity of this AK name and returns it; USAGE if none is enrolled. */
export function removeIdentity(networkDir: string, akName: string): TrustedIdentity {
  const name = normalizeAkName(akName);
  if (!listIdentities(networkDir).some((i) => i.akName === name)) throw notEnrolled(name);
  return changeStore(networkDir, (s) => {
    const at = s.identities.findIndex((i) => i.akName === name);
    if (at < 0) throw notEnrolled(name);
    return s.identities.splice(at, 1)[0]!;
  });
}

function notEnrolled(name: string): SwarmpayError {
  return new SwarmpayError('USAGE', `no TPM identity with AK name ${name} is enrolled`, { hint: 'see `swarmpay tpm trust list`; nothing was changed' });
}
