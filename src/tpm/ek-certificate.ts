/**
 * EK certificates (TCG EK Credential Profile 2.x) and the CAs a verifier trusts for them,
 * with node:crypto's X509Certificate: the chain from the EK certificate up to a root among
 * the trusted certificates, each link's signature, issuer and validity checked, and the
 * EK's public area rebuilt from the certificate's key and the TCG template it is for.
 * X509Certificate parses TCG certificates' critical subjectAltName (the TPM's manufacturer,
 * model and firmware as a directory name) without fuss; it does not judge extensions, so
 * what matters here is checked explicitly.
 */
import { X509Certificate, createHash } from 'node:crypto';
import { SwarmpayError } from '../errors.js';
import { TPM_ALG } from './constants.js';
import { ekTemplate, type EkKind } from './identity.js';
import type { Public } from './marshal.js';

/** tcg-kp-EKCertificate: the extended key usage that marks an EK certificate. */
const TCG_KP_EK_CERTIFICATE = '2.23.133.8.1';
/** Chains longer than this are not a TPM vendor's. */
const MAX_CHAIN = 6;

function invalid(message: string, hint = 'enroll only TPMs whose EK certificate comes from a CA you trust; nothing was recorded'): SwarmpayError {
  return new SwarmpayError('ATTESTATION_INVALID', message, { hint });
}

/** Every certificate of a PEM file (a bundle of CAs); none, or one that does not parse, is INVALID_FILE. */
export function parseCaBundle(pem: string, source: string): X509Certificate[] {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0) throw new SwarmpayError('INVALID_FILE', `${source} holds no PEM certificate`, { hint: 'give the TPM manufacturer\'s CA certificates as PEM (-----BEGIN CERTIFICATE-----), one after another' });
  return blocks.map((b, i) => {
    try {
      return new X509Certificate(b);
    } catch (e) {
      throw new SwarmpayError('INVALID_FILE', `certificate ${i + 1} of ${source} does not parse: ${(e as Error).message}`, { hint: 'give PEM certificates only' });
    }
  });
}

export function parseEkCertificate(der: Uint8Array): X509Certificate {
  try {
    return new X509Certificate(Buffer.from(der));
  } catch (e) {
    throw invalid(`the EK certificate does not parse: ${(e as Error).message}`);
  }
}

export interface CertSummary {
  subject: string;
  issuer: string;
  /** Hex, as the certificate has it. */
  serial: string;
  /** SHA-256 of the DER, lowercase hex. */
  fingerprint: string;
  notBefore: string;
  notAfter: string;
}

const isoDate = (s: string) => {
  const t = Date.parse(s);
  return Number.isNaN(t) ? s : new Date(t).toISOString();
};

export function certSummary(c: X509Certificate): CertSummary {
  return {
    subject: c.subject.replace(/\n/g, ', '),
    issuer: c.issuer.replace(/\n/g, ', '),
    serial: c.serialNumber.toLowerCase(),
    fingerprint: createHash('sha256').update(c.raw).digest('hex'),
    notBefore: isoDate(c.validFrom),
    notAfter: isoDate(c.validTo),
  };
}

/** The TPM an EK certificate names in its subjectAltName (TCG attributes 2.23.133.2.1-3), where it does. */
export function tpmOfCertificate(c: X509Certificate): { manufacturer: string; model: string; version: string } | null {
  const san = c.subjectAltName ?? '';
  const attr = (n: number): string | null => {
    const m = new RegExp(`2\\.23\\.133\\.2\\.${n}=(#[0-9A-Fa-f]+|[^,"]+)`).exec(san);
    if (!m) return null;
    if (!m[1]!.startsWith('#')) return m[1]!;
    // A DER string (UTF8String, PrintableString, IA5String): tag, a short length, the text.
    const der = Buffer.from(m[1]!.slice(1), 'hex');
    return der.length >= 2 && der[1]! < 0x80 && der.length === 2 + der[1]! ? der.subarray(2).toString('utf8') : null;
  };
  const [manufacturer, model, version] = [attr(1), attr(2), attr(3)];
  return manufacturer === null && model === null && version === null ? null : { manufacturer: manufacturer ?? '', model: model ?? '', version: version ?? '' };
}

const describe = (c: X509Certificate) => `"${c.subject.replace(/\n/g, ', ') || '(empty subject)'}"`;

function checkValidity(c: X509Certificate, what: string, now: Date): void {
  const from = Date.parse(c.validFrom);
  const to = Date.parse(c.validTo);
  if (Number.isNaN(from) || Number.isNaN(to)) throw invalid(`${what} ${describe(c)} has validity dates that cannot be read`);
  if (now.getTime() < from) throw invalid(`${what} ${describe(c)} is not valid before ${new Date(from).toISOString()}`, 'check this machine\'s clock; nothing was recorded');
  if (now.getTime() > to) throw invalid(`${what} ${describe(c)} expired on ${new Date(to).toISOString()}`);
}

/** Whether `issuer` issued `c`: names and key identifiers agree (checkIssued) and its key verifies the signature. */
function issued(c: X509Certificate, issuer: X509Certificate): boolean {
  try {
    return c.checkIssued(issuer) && c.verify(issuer.publicKey);
  } catch {
    return false;
  }
}

export interface VerifiedChain {
  /** The EK certificate first, the trusted root last. */
  chain: X509Certificate[];
  anchor: X509Certificate;
}

/**
 * Checks that `ek` is an EK certificate (not a CA; its extended key usage, if it has one,
 * is tcg-kp-EKCertificate) and that it chains, through certificates of `trusted`, to a
 * self-signed root of `trusted`: every certificate a CA, in its validity period, its
 * signature made by the next one's key. Refusals are ATTESTATION_INVALID.
 */
export function verifyEkChain(ek: X509Certificate, trusted: readonly X509Certificate[], now: Date = new Date()): VerifiedChain {
  if (trusted.length === 0) throw new SwarmpayError('USAGE', 'no CA certificate to check the EK certificate against', { hint: 'give the TPM manufacturer\'s CA certificates (tpm enroll --tpm-ca FILE)' });
  if (ek.ca) throw invalid(`the EK certificate ${describe(ek)} is a CA certificate, not an EK certificate`);
  const eku = ek.keyUsage;
  if (eku !== undefined && eku.length > 0 && !eku.includes(TCG_KP_EK_CERTIFICATE)) {
    throw invalid(`the certificate ${describe(ek)} is not an EK certificate: its extended key usage (${eku.join(', ')}) lacks tcg-kp-EKCertificate (${TCG_KP_EK_CERTIFICATE})`);
  }
  checkValidity(ek, 'the EK certificate', now);
  const chain = [ek];
  let cur = ek;
  for (let depth = 0; depth < MAX_CHAIN; depth++) {
    const issuer = trusted.find((c) => c.ca && issued(cur, c) && !chain.some((x) => x.raw.equals(c.raw)));
    if (!issuer) {
      const which = depth === 0 ? 'the EK certificate' : `the CA certificate ${describe(cur)}`;
      const issuerName = `"${cur.issuer.replace(/\n/g, ', ')}"`;
      const namesake = trusted.some((c) => c.subject === cur.issuer);
      throw invalid(
        namesake
          ? `${which} is issued by ${issuerName}, but not by the trusted certificate of that name: its signature does not verify with that key (another CA of the same name)`
          : `${which} is issued by ${issuerName}, which is none of the trusted CA certificates`,
        'the TPM is not certified by a CA you trust: if you trust its CA, give that CA\'s certificates (the root and any intermediate); nothing was recorded',
      );
    }
    checkValidity(issuer, 'the CA certificate', now);
    chain.push(issuer);
    if (issued(issuer, issuer)) return { chain, anchor: issuer };
    cur = issuer;
  }
  throw invalid(`the EK certificate's chain is longer than ${MAX_CHAIN} certificates without reaching a trusted root`);
}

/**
 * The EK the certificate is for, as the TPM would create it: the certificate's key in the
 * TCG template of its kind (RSA 2048: L-1; ECC P-256: L-2), which says the key's name
 * algorithm and symmetric cipher, what MakeCredential needs beside the key.
 */
export function ekPublicFromCertificate(ek: X509Certificate): { kind: EkKind; public: Public } {
  const key = ek.publicKey;
  const details = key.asymmetricKeyDetails ?? {};
  const jwk = key.export({ format: 'jwk' });
  const bytes = (s: string | undefined) => Buffer.from(s ?? '', 'base64url');
  if (key.asymmetricKeyType === 'rsa' && details.modulusLength === 2048) {
    const e = bytes(jwk.e).reduce((v, b) => v * 256 + b, 0);
    const t = ekTemplate('rsa-2048');
    if (t.parms.type === TPM_ALG.RSA) return { kind: 'rsa-2048', public: { ...t, parms: { ...t.parms, exponent: e === 0x10001 ? 0 : e, modulus: bytes(jwk.n) } } };
  }
  if (key.asymmetricKeyType === 'ec' && details.namedCurve === 'prime256v1') {
    const t = ekTemplate('ecc-p256');
    if (t.parms.type === TPM_ALG.ECC) return { kind: 'ecc-p256', public: { ...t, parms: { ...t.parms, x: bytes(jwk.x), y: bytes(jwk.y) } } };
  }
  const what = key.asymmetricKeyType === 'rsa' ? `RSA ${details.modulusLength}` : key.asymmetricKeyType === 'ec' ? `EC ${details.namedCurve}` : String(key.asymmetricKeyType);
  throw invalid(`the EK certificate holds an ${what} key; swarmpay enrolls TPMs by their RSA 2048 or ECC NIST P-256 EK (TCG templates L-1, L-2)`);
}
