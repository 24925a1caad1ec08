/**
 * The TPM's identity, as the attester shows it: the endorsement key (EK) its manufacturer
 * certified, read back from NV (TCG EK Credential Profile 2.x, 2.2.1.4 "Low Range"), and
 * the attestation key (AK) beside it in the endorsement hierarchy. And the attester's half
 * of credential activation: the TPM recovers a verifier's secret only when it holds both
 * the EK the secret was encrypted to and an object whose name the secret was bound to.
 */
import { X509Certificate, createPublicKey, type KeyObject } from 'node:crypto';
import { SwarmpayError } from '../errors.js';
import { ActivateCredential, GetCapability, NV_Read, NV_ReadPublic, PolicySecret } from './commands.js';
import { TPM_ALG, TPM_CAP, TPM_PT, TPM_RH, TPM_SE } from './constants.js';
import { authorize, passwordSession } from './execute.js';
import { marshalPublic, nameOfBytes, type Public } from './marshal.js';
import { RC, TpmError } from './rc.js';
import { hmacSession } from './sessions.js';
import { AK_TEMPLATE, EK_ECC_TEMPLATE, EK_RSA_TEMPLATE } from './templates.js';
import type { Tpm } from './tpm.js';

/** The EKs swarmpay knows: the TCG's two low-range templates. */
export type EkKind = 'rsa-2048' | 'ecc-p256';
const EK_KINDS: readonly EkKind[] = ['ecc-p256', 'rsa-2048'];

/** Where the EK Credential Profile puts each EK's certificate (2.2.1.4). */
export const EK_CERT_INDEX: Record<EkKind, number> = { 'rsa-2048': 0x01c00002, 'ecc-p256': 0x01c0000a };

export function ekTemplate(kind: EkKind): Public {
  return kind === 'rsa-2048' ? EK_RSA_TEMPLATE : EK_ECC_TEMPLATE;
}

/** What NV_Read moves at once when the TPM does not say (the least the PC Client profile allows). */
const NV_BUFFER_DEFAULT = 512;

/**
 * An NV index's whole contents, read in chunks of at most TPM_PT_NV_BUFFER_MAX (or `chunk`,
 * if smaller), authorized by the index itself (AUTHREAD, empty auth).
 */
export async function readNv(tpm: Tpm, index: number, chunk = Infinity): Promise<Buffer> {
  return tpm.use(async () => {
    const { pub } = await tpm.run(NV_ReadPublic(index));
    const caps = await tpm.run(GetCapability(TPM_CAP.TPM_PROPERTIES, TPM_PT.NV_BUFFER_MAX, 1));
    const max = Math.max(1, Math.min(chunk, caps.properties?.get(TPM_PT.NV_BUFFER_MAX) || NV_BUFFER_DEFAULT));
    const parts: Buffer[] = [];
    for (let off = 0; off < pub.dataSize; ) {
      const got = await tpm.run(NV_Read(authorize(index, passwordSession()), index, Math.min(max, pub.dataSize - off), off));
      if (got.length === 0) throw new SwarmpayError('TPM_PROTOCOL', `the TPM returned no data reading NV index 0x${index.toString(16)} at ${off}`);
      parts.push(got);
      off += got.length;
    }
    return Buffer.concat(parts).subarray(0, pub.dataSize);
  });
}

/**
 * A DER certificate without what follows it: some TPMs keep the certificate in an index
 * larger than it, padded. The outer SEQUENCE's length says where it ends.
 */
function trimDer(b: Buffer): Buffer {
  if (b.length < 2 || b[0] !== 0x30) return b;
  const first = b[1]!;
  if (first < 0x80) return b.subarray(0, Math.min(b.length, 2 + first));
  const n = first & 0x7f;
  if (n === 0 || n > 4 || b.length < 2 + n) return b;
  let len = 0;
  for (let i = 0; i < n; i++) len = len * 256 + b[2 + i]!;
  return b.subarray(0, Math.min(b.length, 2 + n + len));
}

export interface EkCertificate {
  kind: EkKind;
  index: number;
  /** The certificate, DER. */
  der: Buffer;
}

/**
 * The EK certificate from NV: ECC P-256 if there is one (its EK is quicker to recreate),
 * else RSA 2048. None is TPM_UNAVAILABLE: this TPM has no identity a verifier could check.
 */
export async function readEkCertificate(tpm: Tpm, kinds: readonly EkKind[] = EK_KINDS): Promise<EkCertificate> {
  for (const kind of kinds) {
    const index = EK_CERT_INDEX[kind];
    try {
      const der = trimDer(await readNv(tpm, index));
      if (der.length > 0) return { kind, index, der };
    } catch (e) {
      if (e instanceof TpmError && (e.is(RC.HANDLE) || e.is(RC.NV_UNINITIALIZED))) continue;
      throw e;
    }
  }
  throw new SwarmpayError('TPM_UNAVAILABLE', `this TPM has no EK certificate (NV ${kinds.map((k) => `0x${EK_CERT_INDEX[k].toString(16).padStart(8, '0')}`).join(', ')} undefined)`, {
    hint: 'a software TPM gets one when `swarmpay node start` first creates it (swtpm_setup --create-ek-cert); a hardware TPM without one cannot be enrolled',
  });
}

/** The key of an RSA or ECC P-256 public area, as node:crypto takes it. */
export function keyOfPublic(pub: Public): KeyObject {
  const p = pub.parms;
  const b64 = (b: Uint8Array) => Buffer.from(b).toString('base64url');
  const pad = (b: Uint8Array, n: number) => Buffer.concat([Buffer.alloc(Math.max(0, n - b.length)), b]);
  if (p.type === TPM_ALG.ECC) return createPublicKey({ key: { kty: 'EC', crv: 'P-256', x: b64(pad(p.x, 32)), y: b64(pad(p.y, 32)) }, format: 'jwk' });
  if (p.type === TPM_ALG.RSA) {
    const e = Buffer.alloc(4);
    e.writeUInt32BE(p.exponent === 0 ? 0x10001 : p.exponent);
    return createPublicKey({ key: { kty: 'RSA', n: b64(p.modulus), e: b64(e.subarray(e.findIndex((v) => v !== 0))) }, format: 'jwk' });
  }
  throw new SwarmpayError('USAGE', 'only RSA and ECC keys have a public key');
}

/** Whether two keys are the same public key (their SubjectPublicKeyInfo DER). */
export function sameSpki(a: KeyObject, b: KeyObject): boolean {
  return a.export({ type: 'spki', format: 'der' }).equals(b.export({ type: 'spki', format: 'der' }));
}

export interface TpmIdentity {
  ekKind: EkKind;
  /** The EK certificate, DER, as read from NV. */
  ekCert: Buffer;
  ekPublic: Public;
  /** The AK's marshalled TPMT_PUBLIC and its name. */
  akPublic: Buffer;
  akName: Buffer;
}

/**
 * The EK certificate, the EK recreated from its template, and the AK; the certificate must
 * certify that EK, or it is another TPM's (or this TPM's endorsement seed changed since).
 */
export async function tpmIdentity(tpm: Tpm): Promise<TpmIdentity> {
  return tpm.use(async () => {
    const cert = await readEkCertificate(tpm);
    const ekPublic = await tpm.withEndorsementKey(ekTemplate(cert.kind), async (ek) => ek.outPublic);
    let certKey: KeyObject;
    try {
      certKey = new X509Certificate(cert.der).publicKey;
    } catch (e) {
      throw new SwarmpayError('TPM_PROTOCOL', `the EK certificate at NV 0x${cert.index.toString(16)} does not parse: ${(e as Error).message}`);
    }
    if (!sameSpki(certKey, keyOfPublic(ekPublic))) {
      throw new SwarmpayError('TPM_WRONG_TPM', `the EK certificate at NV 0x${cert.index.toString(16)} certifies another key than this TPM's ${cert.kind} EK`, {
        hint: 'the certificate is not this TPM\'s (or its endorsement hierarchy was cleared since): it cannot be enrolled',
      });
    }
    return tpm.withEndorsementKey(AK_TEMPLATE, async (ak) => {
      const akPublic = marshalPublic(ak.outPublic);
      // Re-marshalled from our parse: if that lost a byte the TPM would name the key otherwise.
      if (!nameOfBytes(ak.outPublic.nameAlg, akPublic).equals(ak.name)) throw new SwarmpayError('TPM_PROTOCOL', "the TPM's AK name is not the name of its public area");
      return { ekKind: cert.kind, ekCert: cert.der, ekPublic, akPublic, akName: ak.name };
    });
  });
}

/**
 * TPM2_ActivateCredential with the AK (password session: the AK's admin role takes its
 * empty authValue) and the EK of `ekKind` (a policy session that ran PolicySecret with the
 * endorsement authorization). The TPM returns the credential only if it was made for this
 * EK and bound to this AK's name; otherwise TPM_REFUSED.
 */
export async function activateCredential(tpm: Tpm, ekKind: EkKind, credentialBlob: Uint8Array, encryptedSecret: Uint8Array): Promise<Buffer> {
  const run = tpm.run.bind(tpm);
  try {
    return await tpm.withEndorsementKey(AK_TEMPLATE, (ak) =>
      tpm.withEndorsementKey(ekTemplate(ekKind), (ek) =>
        tpm.withSession(TPM_SE.POLICY, null, async (s) => {
          await run(PolicySecret(authorize(TPM_RH.ENDORSEMENT, passwordSession()), s.handle));
          return run(ActivateCredential(authorize(ak, passwordSession()), authorize(ek, hmacSession(s)), credentialBlob, encryptedSecret));
        }),
      ),
    );
  } catch (e) {
    if (!(e instanceof TpmError)) throw e;
    throw new SwarmpayError(e.rcName === 'TPM_RC_LOCKOUT' ? 'TPM_LOCKOUT' : 'TPM_REFUSED', `the TPM refused to activate the credential: ${e.message}`, {
      hint: 'the credential was made for another EK, or bound to another key than this TPM\'s AK',
      details: { rc: e.rc },
    });
  }
}
