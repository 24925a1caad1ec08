/**
 * TPM 2.0 constants, named and valued as in the TCG TPM 2.0 Library, Part 2 (Structures).
 * Only what swarmpay's commands use.
 */

/** Part 2, 6.5.2 TPM_CC: command codes. */
export const TPM_CC = {
  EvictControl: 0x120,
  NV_UndefineSpace: 0x122,
  NV_DefineSpace: 0x12a,
  CreatePrimary: 0x131,
  NV_Increment: 0x134,
  Startup: 0x144,
  ActivateCredential: 0x147,
  Certify: 0x148,
  NV_Read: 0x14e,
  PolicySecret: 0x151,
  Create: 0x153,
  Load: 0x157,
  Quote: 0x158,
  Unseal: 0x15e,
  FlushContext: 0x165,
  LoadExternal: 0x167,
  PolicyAuthValue: 0x16b,
  NV_ReadPublic: 0x169,
  ReadPublic: 0x173,
  StartAuthSession: 0x176,
  GetCapability: 0x17a,
  GetRandom: 0x17b,
  PCR_Read: 0x17e,
  PolicyPCR: 0x17f,
  PCR_Extend: 0x182,
  PolicyGetDigest: 0x189,
} as const;

/** Part 2, 6.3 TPM_ALG_ID. */
export const TPM_ALG = {
  RSA: 0x0001,
  SHA1: 0x0004,
  AES: 0x0006,
  KEYEDHASH: 0x0008,
  SHA256: 0x000b,
  SHA384: 0x000c,
  SHA512: 0x000d,
  NULL: 0x0010,
  RSASSA: 0x0014,
  ECDSA: 0x0018,
  ECC: 0x0023,
  CFB: 0x0043,
} as const;

/** Part 2, 6.4 TPM_ECC_CURVE. */
export const TPM_ECC_NIST_P256 = 0x0003;

/** Part 2, 6.9 TPM_ST: structure tags. */
export const TPM_ST = {
  NO_SESSIONS: 0x8001,
  SESSIONS: 0x8002,
  ATTEST_CERTIFY: 0x8017,
  ATTEST_QUOTE: 0x8018,
  CREATION: 0x8021,
} as const;

/** Part 2, 6.2 TPM_GENERATED_VALUE: the magic of every TPMS_ATTEST the TPM signs. */
export const TPM_GENERATED_VALUE = 0xff544347;

/** Part 2, 7.4 TPM_RH: permanent handles. */
export const TPM_RH = {
  OWNER: 0x40000001,
  NULL: 0x40000007,
  /** TPM_RS_PW: the password authorization session. */
  RS_PW: 0x40000009,
  LOCKOUT: 0x4000000a,
  ENDORSEMENT: 0x4000000b,
  PLATFORM: 0x4000000c,
} as const;

/** Part 2, 6.11 TPM_SE: session types. */
export const TPM_SE = { HMAC: 0x00, POLICY: 0x01, TRIAL: 0x03 } as const;

/** Part 2, 6.5 TPM_SU: startup types. */
export const TPM_SU = { CLEAR: 0x0000, STATE: 0x0001 } as const;

/** Part 2, 6.12 TPM_CAP. */
export const TPM_CAP = { HANDLES: 0x00000001, PCRS: 0x00000005, TPM_PROPERTIES: 0x00000006 } as const;

/** Part 2, 6.13 TPM_PT: fixed and variable properties. */
export const TPM_PT = {
  MANUFACTURER: 0x105,
  VENDOR_STRING_1: 0x106,
  FIRMWARE_VERSION_1: 0x10b,
  FIRMWARE_VERSION_2: 0x10c,
  LOCKOUT_COUNTER: 0x20e,
  MAX_AUTH_FAIL: 0x20f,
  LOCKOUT_INTERVAL: 0x210,
  LOCKOUT_RECOVERY: 0x211,
  /** The most NV_Read or NV_Write moves in one command. */
  NV_BUFFER_MAX: 0x12c,
} as const;

/** Part 2, 8.3 TPMA_OBJECT. */
export const TPMA_OBJECT = {
  fixedTPM: 1 << 1,
  fixedParent: 1 << 4,
  sensitiveDataOrigin: 1 << 5,
  userWithAuth: 1 << 6,
  adminWithPolicy: 1 << 7,
  noDA: 1 << 10,
  restricted: 1 << 16,
  decrypt: 1 << 17,
  sign: 1 << 18,
} as const;

/** Part 2, 13.4 TPMA_NV; TPM_NT_COUNTER sits in bits 7:4. */
export const TPMA_NV = {
  OWNERWRITE: 1 << 1,
  AUTHWRITE: 1 << 2,
  NT_COUNTER: 0x1 << 4,
  OWNERREAD: 1 << 17,
  AUTHREAD: 1 << 18,
  NO_DA: 1 << 25,
  WRITTEN: 1 << 29,
} as const;

/** Part 2, 8.4 TPMA_SESSION. */
export const TPMA_SESSION = { continueSession: 0x01, decrypt: 0x20, encrypt: 0x40, audit: 0x80 } as const;

/** Part 2, 7.2 TPM_HT: a handle's type, its top byte. */
export const TPM_HT = {
  PCR: 0x00,
  NV_INDEX: 0x01,
  HMAC_SESSION: 0x02,
  POLICY_SESSION: 0x03,
  PERMANENT: 0x40,
  TRANSIENT: 0x80,
  PERSISTENT: 0x81,
} as const;
