/**
 * Enrollment: how a verifier comes to trust a peer's attestation key as a real TPM's, the
 * way Keylime's registrar and go-attestation do it, over the peer link.
 *
 * The attester shows its EK certificate and its AK. The verifier checks the certificate
 * chains to a CA it trusts and that the AK's public area is a restricted signing key the
 * TPM made (fixedTPM, sensitiveDataOrigin, restricted, sign). The AK's attributes are only
 * claims so far: so the verifier makes a credential (a fresh secret) that only the TPM
 * holding the certified EK can open, and only while a key of exactly the claimed AK name
 * (which covers those attributes) is loaded beside it. The TPM refuses to load a key with
 * fixedTPM it did not make, so when the attester sends the secret back, the AK is that
 * TPM's. The verifier then records it in the trust store.
 */
import { randomBytes, timingSafeEqual, type X509Certificate } from 'node:crypto';
import { SwarmpayError } from '../errors.js';
import { Conversation } from '../peer/conversation.js';
import type { PeerLink } from '../peer/link.js';
import { akPem } from './attestation.js';
import { TPM_ALG, TPM_ECC_NIST_P256, TPMA_OBJECT } from './constants.js';
import { makeCredential } from './credential.js';
import { certSummary, ekPublicFromCertificate, parseEkCertificate, tpmOfCertificate, verifyEkChain } from './ek-certificate.js';
import { ENROLL_PROTOCOL, encodeEnrollMessage, parseEnrollMessage, type EnrollMessage } from './enroll-messages.js';
import { activateCredential, tpmIdentity } from './identity.js';
import { MarshalError, Reader, nameOfBytes, readPublic, type Public } from './marshal.js';
import type { Tpm } from './tpm.js';
import { recordIdentity, type TrustedIdentity } from './trust-store.js';

/** The secret a verifier puts in the credential: 32 bytes, a SHA-256 digest's size. */
const CREDENTIAL_BYTES = 32;

function invalid(message: string): SwarmpayError {
  return new SwarmpayError('ATTESTATION_INVALID', message, { hint: 'the peer\'s AK cannot be trusted as a TPM key; nothing was recorded' });
}

/** The attributes an AK must claim: a key the TPM generated, cannot export, and signs only what it generated itself with. */
const AK_REQUIRED = ['fixedTPM', 'fixedParent', 'sensitiveDataOrigin', 'restricted', 'sign'] as const;

/**
 * Checks an AK's TPM2B_PUBLIC as the attester sent it: one whole public area, a restricted
 * signing key (not also a decryption key) of ECC NIST P-256 or RSA, named with SHA-256, and
 * `akName` its name (hashed over the bytes as sent). Returns the parsed public area and the
 * TPMT_PUBLIC bytes.
 */
export function checkAkPublic(tpm2bPublic: Uint8Array, akName: Uint8Array): { pub: Public; area: Buffer } {
  let area: Buffer;
  let pub: Public;
  try {
    const r = new Reader(tpm2bPublic);
    area = r.tpm2b();
    r.end();
    pub = new Reader(area).sizedAll(readPublic);
  } catch (e) {
    if (e instanceof MarshalError) throw invalid(`the AK's public area (TPM2B_PUBLIC) does not parse: ${e.message}`);
    throw e;
  }
  const missing = AK_REQUIRED.filter((a) => (pub.attributes & TPMA_OBJECT[a]) === 0);
  if (missing.length > 0) throw invalid(`the AK is not a restricted TPM signing key: its attributes lack ${missing.join(', ')}`);
  if (pub.attributes & TPMA_OBJECT.decrypt) throw invalid('the AK is also a decryption key: an attestation key only signs');
  if (pub.nameAlg !== TPM_ALG.SHA256) throw invalid(`the AK's name algorithm is 0x${pub.nameAlg.toString(16)}; swarmpay enrolls SHA-256-named AKs`);
  const p = pub.parms;
  if (!((p.type === TPM_ALG.ECC && p.curve === TPM_ECC_NIST_P256) || p.type === TPM_ALG.RSA)) throw invalid('the AK is neither an ECC NIST P-256 nor an RSA key');
  const name = nameOfBytes(pub.nameAlg, area);
  if (!name.equals(Buffer.from(akName))) throw invalid(`the AK name ${Buffer.from(akName).toString('hex')} is not the name of its public area (${name.toString('hex')})`);
  return { pub, area };
}

export interface EnrollOptions {
  /** <datadir>/<network>: where the trust store is. */
  networkDir: string;
  label?: string | null;
  /** Default: now. Certificates must be valid at this time. */
  now?: Date;
  /** Record the identity in the trust store (default true). */
  record?: boolean;
}

export interface EnrollResult {
  identity: TrustedIdentity;
  /** An identity of the same AK was enrolled before, and is replaced. */
  replaced: boolean;
}

/**
 * The verifier's side: asks the peer for its TPM identity, checks the EK certificate
 * against `caCerts` (the CAs the user trusts) and the AK's attributes, challenges the TPM
 * with a credential for that EK bound to that AK, and records the AK once the peer returns
 * the secret. Refusals are ATTESTATION_INVALID (the identity is not trusted), PEER_PROTOCOL,
 * PEER_TIMEOUT (the attester is silent for a step's time) or the link's errors; nothing is
 * recorded then.
 */
export async function enrollPeer(link: PeerLink, caCerts: readonly X509Certificate[], opts: EnrollOptions): Promise<EnrollResult> {
  const now = opts.now ?? new Date();
  const peer = new Conversation(link, ENROLL_PROTOCOL, { hint: 'see the attester\'s log; nothing was recorded' });

  peer.send({ t: 'enroll?' });
  const id = await peer.expect('enroll-identity');

  const ekCert = parseEkCertificate(id.ekCert);
  const { anchor } = verifyEkChain(ekCert, caCerts, now);
  const ek = ekPublicFromCertificate(ekCert);
  if (ek.kind !== id.ekKind) throw invalid(`the peer says its EK is ${id.ekKind}, but the certificate is for an ${ek.kind} EK`);
  const ak = checkAkPublic(id.akPublic, id.akName);

  const secret = randomBytes(CREDENTIAL_BYTES);
  const cred = makeCredential(ek.public, id.akName, secret);
  peer.send({ t: 'enroll-challenge', ekKind: ek.kind, ...cred });
  const proof = await peer.expect('enroll-proof');
  if (proof.secret.length !== secret.length || !timingSafeEqual(proof.secret, secret)) {
    throw invalid('the peer did not recover the credential\'s secret: its AK and the certified EK are not in one TPM');
  }

  const ekSummary = certSummary(ekCert);
  const caSummary = certSummary(anchor);
  const identity: TrustedIdentity = {
    akName: id.akName.toString('hex'),
    akPublic: akPem(ak.pub),
    akPublicArea: ak.area.toString('hex'),
    label: opts.label ?? null,
    enrolledAt: now.toISOString(),
    ek: { kind: ek.kind, subject: ekSummary.subject, issuer: ekSummary.issuer, serial: ekSummary.serial, fingerprint: ekSummary.fingerprint, notAfter: ekSummary.notAfter, tpm: tpmOfCertificate(ekCert) },
    ca: { subject: caSummary.subject, fingerprint: caSummary.fingerprint },
    peerKey: link.remoteKey.toString('hex'),
  };
  if (opts.record === false) return { identity, replaced: false };
  return { identity, ...recordIdentity(opts.networkDir, identity) };
}

export interface Answered {
  /** The request answered (or refused). */
  request: EnrollMessage['t'];
  /** Why it was refused (sent to the verifier as an error message), or null. */
  refused: SwarmpayError | null;
}

/**
 * The attester's side, one request at a time: `enroll?` is answered with this TPM's EK
 * certificate and AK, `enroll-challenge` by activating the credential and returning the
 * secret. Each answer stands alone (the EK and AK are recreated from their templates each
 * time), so a server may hand every enrollment frame it receives here, between its own
 * protocol's. A refusal (no TPM, no EK certificate, a credential not for this TPM, a
 * malformed request) is sent to the verifier as an error and returned; only a failure of
 * the link itself is thrown.
 */
export async function answerEnrollment(tpm: Tpm | null, link: PeerLink, message: Uint8Array | EnrollMessage): Promise<Answered> {
  let request: EnrollMessage['t'] = 'enroll?';
  try {
    const m = message instanceof Uint8Array ? parseEnrollMessage(message) : message;
    request = m.t;
    if (m.t !== 'enroll?' && m.t !== 'enroll-challenge') throw new SwarmpayError('PEER_PROTOCOL', `a verifier does not send "${m.t}"`);
    if (tpm === null) throw new SwarmpayError('TPM_UNAVAILABLE', 'this peer serves without a TPM: it has no identity to enroll', { hint: 'a seller answers enrollment in `escrow serve` when its TPM is reachable (see --tpm)' });
    if (m.t === 'enroll?') {
      const id = await tpmIdentity(tpm);
      const akPublic = Buffer.concat([Buffer.from([id.akPublic.length >> 8, id.akPublic.length & 0xff]), id.akPublic]);
      link.send(encodeEnrollMessage({ t: 'enroll-identity', ekKind: id.ekKind, ekCert: id.ekCert, akPublic, akName: id.akName }));
    } else {
      const secret = await activateCredential(tpm, m.ekKind, m.credentialBlob, m.encryptedSecret);
      link.send(encodeEnrollMessage({ t: 'enroll-proof', secret }));
    }
    return { request, refused: null };
  } catch (e) {
    if (!(e instanceof SwarmpayError) || e.code === 'PEER_CLOSED' || e.code === 'PEER_TIMEOUT') throw e;
    link.send(encodeEnrollMessage({ t: 'error', code: e.code, message: e.message }));
    return { request, refused: e };
  }
}
