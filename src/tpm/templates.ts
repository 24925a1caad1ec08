/**
 * The public-area templates swarmpay asks the TPM to create keys from. A primary key is a
 * deterministic function of its hierarchy's seed and its template, so the same template
 * gives the same key on the same TPM every time, and a different one on any other TPM.
 */
import { TPM_ALG, TPM_ECC_NIST_P256, TPMA_OBJECT as A } from './constants.js';
import type { Public } from './marshal.js';

const ZERO32 = new Uint8Array(32);

/**
 * The storage root key: TCG "TPM v2.0 Provisioning Guidance", ECC NIST P-256 SRK template
 * (restricted decryption key, AES-128-CFB, unique x and y zeroed).
 */
export const SRK_TEMPLATE: Public = {
  nameAlg: TPM_ALG.SHA256,
  attributes: A.fixedTPM | A.fixedParent | A.sensitiveDataOrigin | A.userWithAuth | A.noDA | A.restricted | A.decrypt,
  authPolicy: new Uint8Array(0),
  parms: { type: TPM_ALG.ECC, symmetric: { alg: TPM_ALG.AES, keyBits: 128, mode: TPM_ALG.CFB }, scheme: null, curve: TPM_ECC_NIST_P256, x: ZERO32, y: ZERO32 },
};

/** TCG's persistent handle for the SRK. */
export const SRK_PERSISTENT_HANDLE = 0x81000001;

/**
 * The attestation key: a restricted ECDSA-P256-SHA256 signing key in the endorsement
 * hierarchy. Restricted means the TPM signs only digests it computed itself, so nothing
 * it signs can pass for a quote unless it is one.
 */
export const AK_TEMPLATE: Public = {
  nameAlg: TPM_ALG.SHA256,
  attributes: A.fixedTPM | A.fixedParent | A.sensitiveDataOrigin | A.userWithAuth | A.noDA | A.restricted | A.sign,
  authPolicy: new Uint8Array(0),
  parms: { type: TPM_ALG.ECC, symmetric: null, scheme: { alg: TPM_ALG.ECDSA, hash: TPM_ALG.SHA256 }, curve: TPM_ECC_NIST_P256, x: new Uint8Array(0), y: new Uint8Array(0) },
};

/**
 * A sealed data object holding the keystore's data key. With a policy (PCR-bound) only a
 * policy session may unseal it; without, its (empty) authValue does. It is noDA: there is
 * no secret to guess, and a DA-protected object stops unsealing whenever anyone drives
 * the TPM into dictionary-attack lockout (failed authorizations on any object count),
 * which would let a stranger lock the wallet out.
 */
export function sealedTemplate(policy: Uint8Array | null): Public {
  const base = A.fixedTPM | A.fixedParent | A.noDA;
  return {
    nameAlg: TPM_ALG.SHA256,
    attributes: policy ? base : base | A.userWithAuth,
    authPolicy: policy ?? new Uint8Array(0),
    parms: { type: TPM_ALG.KEYEDHASH, unique: new Uint8Array(0) },
  };
}

/**
 * TCG EK Credential Profile 2.x, B.3.3 "Template L-1" and B.3.4 "Template L-2": the EK's
 * authPolicy is PolicySecret(TPM_RH_ENDORSEMENT), so only who holds the endorsement
 * hierarchy's authorization may use the key: H(H(0³² ‖ TPM_CC_PolicySecret ‖ TPM_RH_ENDORSEMENT) ‖ policyRef = ∅).
 */
export const EK_POLICY = Buffer.from('837197674484b3f81a90cc8d46a5d724fd52d76e06520b64f2a1da1b331469aa', 'hex');

/** The EK's attributes in both low-range templates: a restricted decryption (storage) key whose admin role needs the policy. */
const EK_ATTRIBUTES = A.fixedTPM | A.fixedParent | A.sensitiveDataOrigin | A.adminWithPolicy | A.restricted | A.decrypt;

/** Template L-1: RSA 2048, AES-128-CFB, the TCG default EK; the unique field is 256 zero bytes. */
export const EK_RSA_TEMPLATE: Public = {
  nameAlg: TPM_ALG.SHA256,
  attributes: EK_ATTRIBUTES,
  authPolicy: EK_POLICY,
  parms: { type: TPM_ALG.RSA, symmetric: { alg: TPM_ALG.AES, keyBits: 128, mode: TPM_ALG.CFB }, scheme: null, keyBits: 2048, exponent: 0, modulus: new Uint8Array(256) },
};

/** Template L-2: ECC NIST P-256, AES-128-CFB; unique x and y are 32 zero bytes each. */
export const EK_ECC_TEMPLATE: Public = {
  nameAlg: TPM_ALG.SHA256,
  attributes: EK_ATTRIBUTES,
  authPolicy: EK_POLICY,
  parms: { type: TPM_ALG.ECC, symmetric: { alg: TPM_ALG.AES, keyBits: 128, mode: TPM_ALG.CFB }, scheme: null, curve: TPM_ECC_NIST_P256, x: ZERO32, y: ZERO32 },
};
