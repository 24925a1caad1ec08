/**
 * The enrollment protocol's messages (version 1), JSON over the peer link, each type
 * prefixed `enroll` so a server that speaks another protocol on the same link (`escrow
 * serve`) can tell them apart:
 *
 *   verifier → attester   enroll?            "show me your TPM"
 *   attester → verifier   enroll-identity    EK certificate (DER, base64), EK kind, AK public (TPM2B_PUBLIC, hex), AK name
 *   verifier → attester   enroll-challenge   a credential for that EK bound to that AK name (MakeCredential)
 *   attester → verifier   enroll-proof       the secret inside, which only that TPM could recover (ActivateCredential)
 *   either                error              a refusal: code and message
 *
 * Parsed field by field, with sizes bounded, before anything acts on them.
 */
import { SwarmpayError } from '../errors.js';
import type { Protocol } from '../peer/conversation.js';
import { encodeVersioned, parseVersioned } from '../peer/json-messages.js';
import { ShapeError, asObj, hex, str, type Obj } from '../util/shape.js';
import type { EkKind } from './identity.js';

const ENROLL_PROTOCOL_VERSION = 1;
const PROTOCOL_NAME = 'TPM enrollment';

/** Bounds generous for any TPM vendor's EK certificate and RSA 4096 keys, small enough for one frame. */
const MAX_EK_CERT = 8 * 1024;
const MAX_PUBLIC = 1024;
const MAX_NAME = 2 + 64;
const MAX_BLOB = 2 + 64 + 2 + 64;
const MAX_SECRET = 512;
const MAX_CREDENTIAL = 64;

export type EnrollMessage =
  | { t: 'enroll?' }
  | { t: 'enroll-identity'; ekKind: EkKind; ekCert: Buffer; akPublic: Buffer; akName: Buffer }
  | { t: 'enroll-challenge'; ekKind: EkKind; credentialBlob: Buffer; encryptedSecret: Buffer }
  | { t: 'enroll-proof'; secret: Buffer }
  | { t: 'error'; code: string; message: string };

function bytesHex(o: Obj, k: string, w: string, min: number, max: number): Buffer {
  const h = hex(o, k, w);
  if (h.length / 2 < min || h.length / 2 > max) throw new ShapeError(`${w}.${k} must be ${min} to ${max} bytes`);
  return Buffer.from(h, 'hex');
}

function ekKind(o: Obj, w: string): EkKind {
  const k = str(o, 'ekKind', w);
  if (k !== 'rsa-2048' && k !== 'ecc-p256') throw new ShapeError(`${w}.ekKind must be rsa-2048 or ecc-p256`);
  return k;
}

function parseBody(o: Obj): EnrollMessage {
  const t = str(o, 't', 'message');
  const w = `message ${t}`;
  switch (t) {
    case 'enroll?':
      return { t };
    case 'enroll-identity': {
      const cert = str(o, 'ekCert', w);
      if (!/^[A-Za-z0-9+/]*={0,2}$/.test(cert) || cert.length === 0 || cert.length > Math.ceil(MAX_EK_CERT / 3) * 4) throw new ShapeError(`${w}.ekCert must be base64 of 1 to ${MAX_EK_CERT} bytes`);
      return { t, ekKind: ekKind(o, w), ekCert: Buffer.from(cert, 'base64'), akPublic: bytesHex(o, 'akPublic', w, 4, MAX_PUBLIC), akName: bytesHex(o, 'akName', w, 3, MAX_NAME) };
    }
    case 'enroll-challenge':
      return { t, ekKind: ekKind(o, w), credentialBlob: bytesHex(o, 'credentialBlob', w, 4, MAX_BLOB), encryptedSecret: bytesHex(o, 'encryptedSecret', w, 1, MAX_SECRET) };
    case 'enroll-proof':
      return { t, secret: bytesHex(o, 'secret', w, 1, MAX_CREDENTIAL) };
    case 'error':
      return { t, code: str(o, 'code', w).slice(0, 64), message: str(o, 'message', w).slice(0, 500) };
    default:
      throw new ShapeError(`unknown message type "${t.slice(0, 32)}"`);
  }
}

export function parseEnrollMessage(bytes: Uint8Array): EnrollMessage {
  // An error is read whatever the version it came in: a server of another protocol (an
  // escrow server that does not serve enrollment) says so in its own protocol's version.
  const error = errorOfAnyVersion(bytes);
  if (error !== null) return error;
  return parseVersioned(bytes, PROTOCOL_NAME, ENROLL_PROTOCOL_VERSION, parseBody);
}

function errorOfAnyVersion(bytes: Uint8Array): Extract<EnrollMessage, { t: 'error' }> | null {
  let o: Obj;
  try {
    o = asObj(JSON.parse(Buffer.from(bytes).toString('utf8')), 'message');
  } catch {
    return null;
  }
  if (o.t !== 'error' || typeof o.code !== 'string' || typeof o.message !== 'string') return null;
  return { t: 'error', code: o.code.slice(0, 64), message: o.message.slice(0, 500) };
}

export function encodeEnrollMessage(m: EnrollMessage): Buffer {
  switch (m.t) {
    case 'enroll-identity':
      return encodeVersioned(ENROLL_PROTOCOL_VERSION, { t: m.t, ekKind: m.ekKind, ekCert: m.ekCert.toString('base64'), akPublic: m.akPublic.toString('hex'), akName: m.akName.toString('hex') });
    case 'enroll-challenge':
      return encodeVersioned(ENROLL_PROTOCOL_VERSION, { t: m.t, ekKind: m.ekKind, credentialBlob: m.credentialBlob.toString('hex'), encryptedSecret: m.encryptedSecret.toString('hex') });
    case 'enroll-proof':
      return encodeVersioned(ENROLL_PROTOCOL_VERSION, { t: m.t, secret: m.secret.toString('hex') });
    default:
      return encodeVersioned(ENROLL_PROTOCOL_VERSION, m);
  }
}

/**
 * Whether a frame is an enrollment request a server should hand to `answerEnrollment`: a
 * JSON object whose type starts with "enroll". Only a look at the type; the parse is
 * answerEnrollment's.
 */
export function isEnrollmentMessage(bytes: Uint8Array): boolean {
  try {
    const o = asObj(JSON.parse(Buffer.from(bytes).toString('utf8')), 'message');
    return typeof o.t === 'string' && o.t.startsWith('enroll');
  } catch {
    return false;
  }
}

/** The attester's refusal (an `error` message) as the verifier's error; null for any other message. */
function refusal(m: EnrollMessage): SwarmpayError | null {
  if (m.t !== 'error') return null;
  // A peer whose server does not know enrollment answers with its own protocol's error (an
  // unknown message type, or another version): our requests are well formed, so that is all it can mean.
  if (m.code === 'PEER_PROTOCOL') {
    return new SwarmpayError('PEER_PROTOCOL', `the peer does not answer TPM enrollment: ${m.message}`, {
      hint: 'the peer\'s swarmpay is older, or its server does not serve enrollment (a seller answers it in `escrow serve`, with its TPM reachable); nothing was recorded',
      details: { peerCode: m.code },
    });
  }
  return new SwarmpayError('ATTESTATION_INVALID', `the peer refused enrollment: ${m.code}: ${m.message}`, {
    hint: m.code === 'TPM_UNAVAILABLE' ? 'the peer has no TPM with an EK certificate to show; nothing was recorded' : 'nothing was recorded',
    details: { peerCode: m.code },
  });
}

/** Enrollment as a Conversation speaks it. */
export const ENROLL_PROTOCOL: Protocol<EnrollMessage> = { name: PROTOCOL_NAME, parse: parseEnrollMessage, encode: encodeEnrollMessage, refusal };
