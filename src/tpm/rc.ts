import { SwarmpayError } from '../errors.js';

/**
 * TPM response codes (Part 2, 6.6 TPM_RC) decoded to the spec's names, and the one error
 * type the TPM layer throws for them.
 */

/** Format-1 codes (bit 7 set): the error number in bits 5:0, plus which handle, session or parameter. */
const FMT1: Record<number, string> = {
  0x01: 'TPM_RC_ASYMMETRIC', 0x02: 'TPM_RC_ATTRIBUTES', 0x03: 'TPM_RC_HASH', 0x04: 'TPM_RC_VALUE', 0x05: 'TPM_RC_HIERARCHY',
  0x07: 'TPM_RC_KEY_SIZE', 0x08: 'TPM_RC_MGF', 0x09: 'TPM_RC_MODE', 0x0a: 'TPM_RC_TYPE', 0x0b: 'TPM_RC_HANDLE', 0x0c: 'TPM_RC_KDF',
  0x0d: 'TPM_RC_RANGE', 0x0e: 'TPM_RC_AUTH_FAIL', 0x0f: 'TPM_RC_NONCE', 0x10: 'TPM_RC_PP', 0x12: 'TPM_RC_SCHEME', 0x15: 'TPM_RC_SIZE',
  0x16: 'TPM_RC_SYMMETRIC', 0x17: 'TPM_RC_TAG', 0x18: 'TPM_RC_SELECTOR', 0x1a: 'TPM_RC_INSUFFICIENT', 0x1b: 'TPM_RC_SIGNATURE',
  0x1c: 'TPM_RC_KEY', 0x1d: 'TPM_RC_POLICY_FAIL', 0x1f: 'TPM_RC_INTEGRITY', 0x20: 'TPM_RC_TICKET', 0x21: 'TPM_RC_RESERVED_BITS',
  0x22: 'TPM_RC_BAD_AUTH', 0x23: 'TPM_RC_EXPIRED', 0x24: 'TPM_RC_POLICY_CC', 0x25: 'TPM_RC_BINDING', 0x26: 'TPM_RC_CURVE', 0x27: 'TPM_RC_ECC_POINT',
};

/** Format-0 codes, errors (RC_VER1 = 0x100) and warnings (RC_WARN = 0x900). */
const FMT0: Record<number, string> = {
  0x100: 'TPM_RC_INITIALIZE', 0x101: 'TPM_RC_FAILURE', 0x103: 'TPM_RC_SEQUENCE', 0x10b: 'TPM_RC_PRIVATE', 0x119: 'TPM_RC_HMAC',
  0x120: 'TPM_RC_DISABLED', 0x121: 'TPM_RC_EXCLUSIVE', 0x124: 'TPM_RC_AUTH_TYPE', 0x125: 'TPM_RC_AUTH_MISSING', 0x126: 'TPM_RC_POLICY',
  0x127: 'TPM_RC_PCR', 0x128: 'TPM_RC_PCR_CHANGED', 0x12d: 'TPM_RC_UPGRADE', 0x12e: 'TPM_RC_TOO_MANY_CONTEXTS', 0x12f: 'TPM_RC_AUTH_UNAVAILABLE',
  0x130: 'TPM_RC_REBOOT', 0x131: 'TPM_RC_UNBALANCED', 0x142: 'TPM_RC_COMMAND_SIZE', 0x143: 'TPM_RC_COMMAND_CODE', 0x144: 'TPM_RC_AUTHSIZE',
  0x145: 'TPM_RC_AUTH_CONTEXT', 0x146: 'TPM_RC_NV_RANGE', 0x147: 'TPM_RC_NV_SIZE', 0x148: 'TPM_RC_NV_LOCKED', 0x149: 'TPM_RC_NV_AUTHORIZATION',
  0x14a: 'TPM_RC_NV_UNINITIALIZED', 0x14b: 'TPM_RC_NV_SPACE', 0x14c: 'TPM_RC_NV_DEFINED', 0x150: 'TPM_RC_BAD_CONTEXT', 0x151: 'TPM_RC_CPHASH',
  0x152: 'TPM_RC_PARENT', 0x153: 'TPM_RC_NEEDS_TEST', 0x154: 'TPM_RC_NO_RESULT', 0x155: 'TPM_RC_SENSITIVE',
  0x901: 'TPM_RC_CONTEXT_GAP', 0x902: 'TPM_RC_OBJECT_MEMORY', 0x903: 'TPM_RC_SESSION_MEMORY', 0x904: 'TPM_RC_MEMORY',
  0x905: 'TPM_RC_SESSION_HANDLES', 0x906: 'TPM_RC_OBJECT_HANDLES', 0x907: 'TPM_RC_LOCALITY', 0x908: 'TPM_RC_YIELDED', 0x909: 'TPM_RC_CANCELED',
  0x90a: 'TPM_RC_TESTING', 0x920: 'TPM_RC_NV_RATE', 0x921: 'TPM_RC_LOCKOUT', 0x922: 'TPM_RC_RETRY', 0x923: 'TPM_RC_NV_UNAVAILABLE',
};

export interface DecodedRc {
  /** The spec's name, e.g. TPM_RC_POLICY_FAIL. */
  name: string;
  /** Which handle, session or parameter (1-based) the error is about, for format-1 codes. */
  subject?: { kind: 'handle' | 'session' | 'parameter'; index: number };
}

export function decodeRc(rc: number): DecodedRc {
  if (rc & 0x080) {
    const name = FMT1[rc & 0x3f] ?? `TPM_RC_FMT1_0x${(rc & 0x3f).toString(16)}`;
    const n = (rc >> 8) & 0xf;
    if (rc & 0x040) return { name, subject: { kind: 'parameter', index: n } };
    if (n === 0) return { name };
    return n & 0x8 ? { name, subject: { kind: 'session', index: n & 0x7 } } : { name, subject: { kind: 'handle', index: n } };
  }
  if ((rc & 0x100) === 0) return { name: `TPM 1.2 response 0x${rc.toString(16)}` };
  return { name: FMT0[rc & 0xf7f] ?? `TPM_RC_0x${rc.toString(16)}` };
}

/** The base code with handle, session and parameter numbers removed, for comparisons. */
export function baseRc(rc: number): number {
  return rc & 0x080 ? 0x080 | (rc & 0x3f) : rc & 0xf7f;
}

export const RC = {
  SUCCESS: 0x000,
  INITIALIZE: 0x100,
  POLICY_FAIL: 0x09d,
  INTEGRITY: 0x09f,
  BAD_AUTH: 0x0a2,
  AUTH_FAIL: 0x08e,
  HANDLE: 0x08b,
  NV_DEFINED: 0x14c,
  NV_UNINITIALIZED: 0x14a,
  LOCKOUT: 0x921,
  RETRY: 0x922,
  TESTING: 0x90a,
  YIELDED: 0x908,
} as const;

/**
 * A TPM answered a command with a non-zero response code. It is a SwarmpayError (TPM
 * refused, or in lockout), so one that no caller handles more precisely still reaches
 * the user with a stable code and exit status.
 */
export class TpmError extends SwarmpayError {
  /** The spec's name of the code, e.g. TPM_RC_POLICY_FAIL. */
  readonly rcName: string;
  constructor(
    readonly rc: number,
    readonly command: string,
  ) {
    const d = decodeRc(rc);
    const lockout = baseRc(rc) === RC.LOCKOUT;
    super(lockout ? 'TPM_LOCKOUT' : 'TPM_REFUSED', `${command}: ${d.name}${d.subject ? ` (${d.subject.kind} ${d.subject.index})` : ''} [0x${rc.toString(16).padStart(3, '0')}]`, {
      hint: lockout ? 'the TPM is in dictionary-attack lockout: wait for it to end (see `swarmpay tpm status`)' : 'see `swarmpay tpm status`',
      details: { rc },
    });
    this.rcName = d.name;
  }

  is(base: number): boolean {
    return baseRc(this.rc) === base;
  }
}
