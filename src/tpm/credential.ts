/**
 * TPM2_MakeCredential computed by the verifier, with nothing but node:crypto (TCG TPM 2.0
 * Library, Part 1, 24 "Credential Protection"; the seed per Annex B.10.4 for RSA and C.6.4
 * for ECC). A credential made for an EK and an AK name can be recovered only by the TPM
 * that holds the EK's private key, and only while an object of exactly that name is loaded
 * in it (TPM2_ActivateCredential): the name covers the AK's public area, its attributes
 * included, so a verifier that checked those attributes knows the TPM holds such a key.
 *
 *   seed         RSA: random, sent as RSA-OAEP(EK, label "IDENTITY\0")
 *                ECC: KDFe(nameAlg, x([e]EK), "IDENTITY", x(eG), x(EK)), sent as the point eG
 *   symKey       KDFa(nameAlg, seed, "STORAGE", AK name, ∅, EK's symmetric key bits)
 *   encIdentity  AES-CFB(symKey, IV = 0, TPM2B_DIGEST credential)
 *   hmacKey      KDFa(nameAlg, seed, "INTEGRITY", ∅, ∅, digest bits)
 *   outerHMAC    HMAC(hmacKey, encIdentity ‖ AK name)
 *   blob         TPM2B_ID_OBJECT { TPM2B outerHMAC ‖ encIdentity }
 *
 * nameAlg is the EK's, as the TPM uses it.
 */
import { constants, createCipheriv, createECDH, createHmac, publicEncrypt, randomBytes } from 'node:crypto';
import { SwarmpayError } from '../errors.js';
import { TPM_ALG, TPM_ECC_NIST_P256 } from './constants.js';
import { keyOfPublic } from './identity.js';
import { Writer, digestSize, hashName, type Public } from './marshal.js';
import { kdfa, kdfe } from './session-crypto.js';

export interface Credential {
  /** TPM2B_ID_OBJECT's contents: TPM2B outerHMAC ‖ encIdentity. */
  credentialBlob: Buffer;
  /** TPM2B_ENCRYPTED_SECRET's contents: the OAEP ciphertext (RSA) or the marshalled ephemeral point (ECC). */
  encryptedSecret: Buffer;
}

/** For known-answer tests only: the seed (RSA) or the ephemeral private key (ECC) to use instead of fresh ones. */
export interface MakeCredentialDeterminism {
  seed?: Uint8Array;
  ephemeralKey?: Uint8Array;
}

const pad = (b: Uint8Array, n: number) => (b.length >= n ? Buffer.from(b) : Buffer.concat([Buffer.alloc(n - b.length), b]));

/** The seed and how it travels to the EK. */
function encryptSeed(ek: Public, d: MakeCredentialDeterminism): { seed: Buffer; encryptedSecret: Buffer } {
  const p = ek.parms;
  const bits = digestSize(ek.nameAlg) * 8;
  if (p.type === TPM_ALG.RSA) {
    const seed = d.seed ? Buffer.from(d.seed) : randomBytes(bits / 8);
    const encryptedSecret = publicEncrypt(
      { key: keyOfPublic(ek), padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: hashName(ek.nameAlg), oaepLabel: Buffer.from('IDENTITY\0', 'latin1') },
      seed,
    );
    return { seed, encryptedSecret };
  }
  if (p.type === TPM_ALG.ECC && p.curve === TPM_ECC_NIST_P256) {
    const e = createECDH('prime256v1');
    if (d.ephemeralKey) e.setPrivateKey(Buffer.from(d.ephemeralKey));
    else e.generateKeys();
    const ekX = pad(p.x, 32);
    let z: Buffer;
    try {
      z = e.computeSecret(Buffer.concat([Buffer.from([0x04]), ekX, pad(p.y, 32)]));
    } catch (err) {
      throw new SwarmpayError('ATTESTATION_INVALID', `the EK's public point is not on P-256: ${(err as Error).message}`);
    }
    const q = e.getPublicKey();
    const ex = q.subarray(1, 33);
    const ey = q.subarray(33, 65);
    return { seed: kdfe(ek.nameAlg, z, 'IDENTITY', ex, ekX, bits), encryptedSecret: new Writer().tpm2b(ex).tpm2b(ey).done() };
  }
  throw new SwarmpayError('ATTESTATION_INVALID', 'a credential can be made only for an RSA or ECC NIST P-256 EK');
}

/**
 * Makes a credential holding `credential` (at most a digest of the EK's nameAlg, e.g. a
 * 32-byte secret) for the EK `ek` (its public area: key, nameAlg, symmetric cipher) and the
 * object named `objectName` (the AK). What the TPM's MakeCredential would return.
 */
export function makeCredential(ek: Public, objectName: Uint8Array, credential: Uint8Array, d: MakeCredentialDeterminism = {}): Credential {
  const sym = ek.parms.type === TPM_ALG.KEYEDHASH ? null : ek.parms.symmetric;
  if (sym === null || sym.alg !== TPM_ALG.AES || sym.mode !== TPM_ALG.CFB) throw new SwarmpayError('ATTESTATION_INVALID', 'the EK is not a storage key with AES in CFB mode: no credential can be made for it');
  const digestBytes = digestSize(ek.nameAlg);
  if (credential.length === 0 || credential.length > digestBytes) throw new SwarmpayError('USAGE', `a credential is 1 to ${digestBytes} bytes, not ${credential.length}`);
  if (objectName.length < 2 || objectName.length !== 2 + digestSize((objectName[0]! << 8) | objectName[1]!)) {
    throw new SwarmpayError('USAGE', 'the object name is not a hash algorithm and a digest of it');
  }
  const { seed, encryptedSecret } = encryptSeed(ek, d);
  const symKey = kdfa(ek.nameAlg, seed, 'STORAGE', objectName, Buffer.alloc(0), sym.keyBits);
  const cipher = createCipheriv(`aes-${sym.keyBits}-cfb`, symKey, Buffer.alloc(16));
  const encIdentity = Buffer.concat([cipher.update(new Writer().tpm2b(credential).done()), cipher.final()]);
  const hmacKey = kdfa(ek.nameAlg, seed, 'INTEGRITY', Buffer.alloc(0), Buffer.alloc(0), digestBytes * 8);
  const outerHmac = createHmac(hashName(ek.nameAlg), hmacKey).update(encIdentity).update(objectName).digest();
  return { credentialBlob: new Writer().tpm2b(outerHmac).bytes(encIdentity).done(), encryptedSecret };
}

/** tpm2-tools' credential file (tpm2_makecredential -o, tpm2_activatecredential -i): magic, version, TPM2B_ID_OBJECT, TPM2B_ENCRYPTED_SECRET. */
const TPM2_TOOLS_CREDENTIAL_MAGIC = 0xbadcc0de;

export function tpm2ToolsCredentialFile(c: Credential): Buffer {
  return new Writer().u32(TPM2_TOOLS_CREDENTIAL_MAGIC).u32(1).tpm2b(c.credentialBlob).tpm2b(c.encryptedSecret).done();
}

export function parseTpm2ToolsCredentialFile(b: Uint8Array): Credential {
  const buf = Buffer.from(b);
  if (buf.length < 12 || buf.readUInt32BE(0) !== TPM2_TOOLS_CREDENTIAL_MAGIC || buf.readUInt32BE(4) !== 1) throw new SwarmpayError('INVALID_FILE', 'not a tpm2-tools credential file (magic 0xbadcc0de, version 1)');
  let off = 8;
  const take = () => {
    if (off + 2 > buf.length) throw new SwarmpayError('INVALID_FILE', 'the credential file is truncated');
    const n = buf.readUInt16BE(off);
    if (off + 2 + n > buf.length) throw new SwarmpayError('INVALID_FILE', 'the credential file is truncated');
    const v = buf.subarray(off + 2, off + 2 + n);
    off += 2 + n;
    return Buffer.from(v);
  };
  const credentialBlob = take();
  const encryptedSecret = take();
  if (off !== buf.length) throw new SwarmpayError('INVALID_FILE', 'the credential file has trailing bytes');
  return { credentialBlob, encryptedSecret };
}
