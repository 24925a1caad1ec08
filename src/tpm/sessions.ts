/**
 * HMAC and salted sessions (TCG TPM 2.0 Library, Part 1, 19 "Authorizations and
 * Acknowledgments" and 21 "Session-based encryption"). A password crosses the bus in
 * the clear and the TPM's answer is taken on trust; with an HMAC session the authValue
 * never leaves this process and every answer is authenticated, and with a salt that only
 * the TPM can decrypt, only the TPM and this process know the key that encrypts secrets
 * (sealed data, new authValues, unsealed data) on the way.
 *
 * This module starts, names and flushes sessions; `execute` (execute.ts) does the
 * per-command work (HMACs, nonces, parameter cipher) with session-crypto.ts.
 */
import { randomBytes } from 'node:crypto';
import { FlushContext, NV_ReadPublic, PolicyAuthValue, StartAuthSession, nvName, type NvPublic } from './commands.js';
import { TPM_ALG, TPM_SE, TPMA_SESSION } from './constants.js';
import { AES_128_CFB, eccSalt, fromTpm, kdfa, type AuthSession } from './session-crypto.js';
import type { Command, EncryptSession, NamedHandle, Session } from './execute.js';
import { digestSize, nameOf, type Public, type SymDef } from './marshal.js';
import { SwarmpayError } from '../errors.js';

/** How sessions reach the TPM: `execute` on a transport, or `Tpm.run` with its retries. */
export type Run = <R>(cmd: Command<R>) => Promise<R>;

const EMPTY = Buffer.alloc(0);

/** A key to salt a session with: the SRK's handle and its public area (ECC NIST P-256). */
export interface SaltKey {
  handle: number;
  public: Public;
  /**
   * The name the key must have, pinned when it was first trusted (a keystore's srkName).
   * The public area comes from the unauthenticated ReadPublic: without a pin, whoever sits
   * on the bus could answer with their own key, learn the salt and act as the TPM.
   */
  name?: Uint8Array;
}

export interface StartSessionOptions {
  /** Salt the session with this key; without, the session key is empty (only the authValue keys HMACs). */
  salt?: SaltKey;
  /** The parameter cipher; AES-128-CFB unless null. */
  symmetric?: SymDef | null;
}

/**
 * Starts an unbound HMAC or policy session (Part 3, 11.1), salted when `opts.salt` is given.
 * A bound session is not offered: its key would depend on the bind entity's authValue,
 * which a salt from the SRK makes unnecessary.
 */
export async function startSession(run: Run, type: number, opts: StartSessionOptions = {}): Promise<AuthSession> {
  const hashAlg = TPM_ALG.SHA256;
  const pinned = opts.salt?.name;
  if (opts.salt && pinned) {
    const pub = opts.salt.public;
    const name = fromTpm('the salt key', () => nameOf(pub));
    if (!name.equals(pinned)) {
      throw new SwarmpayError('TPM_WRONG_TPM', `the TPM's storage key 0x${opts.salt.handle.toString(16)} is not the one pinned (name ${Buffer.from(pinned).toString('hex')})`, {
        hint: 'this is another TPM, or something between swarmpay and the TPM answered in its place; nothing was sent to it',
      });
    }
  }
  const nonceCaller = randomBytes(digestSize(hashAlg));
  const salted = opts.salt ? eccSalt(opts.salt.public) : null;
  const symmetric = opts.symmetric === undefined ? AES_128_CFB : opts.symmetric;
  const { handle, nonceTPM } = await run(
    StartAuthSession(type, nonceCaller, hashAlg, { tpmKey: opts.salt?.handle, encryptedSalt: salted?.encryptedSalt, symmetric }),
  );
  const session: AuthSession = { handle, type, hashAlg, sessionKey: EMPTY, nonceTPM, symmetric, authValueNeeded: false, state: 'open' };
  if (nonceTPM.length < 16) {
    await flushSession(run, session).catch(() => undefined);
    throw new SwarmpayError('TPM_PROTOCOL', `the TPM's answer to TPM2_StartAuthSession is malformed: a nonce of ${nonceTPM.length} bytes`);
  }
  if (!salted) return session;
  return { ...session, sessionKey: kdfa(hashAlg, salted.salt, 'ATH', nonceTPM, nonceCaller, digestSize(hashAlg) * 8) };
}

/** A session salted with `tpmKey` (the SRK), with AES-128-CFB for parameter encryption. */
export function startSaltedSession(run: Run, tpmKey: SaltKey, type: number = TPM_SE.HMAC): Promise<AuthSession> {
  return startSession(run, type, { salt: tpmKey });
}

/** Flushes a session unless the TPM already did; it cannot be used after. */
export async function flushSession(run: Run, s: AuthSession): Promise<void> {
  if (s.state === 'closed') return;
  s.state = 'closed';
  await run(FlushContext(s.handle));
}

export interface HmacSessionOptions {
  /** Encrypt the command's first parameter (a TPM2B: the sensitive data of Create, the auth of NV_DefineSpace). */
  decrypt?: boolean;
  /** Have the TPM encrypt the response's first parameter (a TPM2B: Unseal's outData, NV_Read's data). */
  encrypt?: boolean;
  /** Keep the session after the command; default true. */
  continueSession?: boolean;
}

/** TPMA_SESSION for `opts`, refused if the session should encrypt but has no cipher. */
function sessionAttributes(session: AuthSession, opts: HmacSessionOptions): number {
  if ((opts.decrypt || opts.encrypt) && session.symmetric === null) {
    throw new SwarmpayError('USAGE', `session 0x${session.handle.toString(16)} was started without a cipher: it cannot encrypt parameters`);
  }
  let attributes = opts.continueSession === false ? 0 : TPMA_SESSION.continueSession;
  if (opts.decrypt) attributes |= TPMA_SESSION.decrypt;
  if (opts.encrypt) attributes |= TPMA_SESSION.encrypt;
  return attributes;
}

/**
 * The authorization `execute` puts in a command for a started session, to pair with the
 * handle it authorizes (`authorize`). `authValue` is the authValue of that entity (empty
 * for the SRK, an NV index's own for the index). A policy session puts it into its HMAC
 * only after PolicyAuthValue, but its parameter cipher always takes it (Part 1, 21).
 */
export function hmacSession(session: AuthSession, authValue: Uint8Array = EMPTY, opts: HmacSessionOptions = {}): Session {
  return { kind: 'hmac', session, authValue: Buffer.from(authValue), attributes: sessionAttributes(session, opts) };
}

/** Which way a session that only encrypts does: at least one, or it would have no business in the command. */
export type EncryptDirection = { decrypt: true; encrypt?: boolean } | { decrypt?: boolean; encrypt: true };

/** A session that authorizes nothing and encrypts a parameter of a command authorized otherwise (`withSessions`). */
export function encryptSession(session: AuthSession, direction: EncryptDirection, continueSession = true): EncryptSession {
  return { kind: 'encrypt', session, attributes: sessionAttributes(session, { ...direction, continueSession }) };
}

/** Part 3, 23.17: the policy then also requires the entity's authValue, proven by the session's HMAC. */
export async function policyAuthValue(run: Run, s: AuthSession): Promise<void> {
  await run(PolicyAuthValue(s.handle));
  s.authValueNeeded = true;
}

/**
 * An NV index with its current name, for commands an HMAC session authorizes. The name
 * changes when the index is first written (TPMA_NV_WRITTEN), so it is read, not kept.
 */
export async function nvIndex(run: Run, index: number): Promise<NamedHandle & { pub: NvPublic }> {
  const { pub, name } = await run(NV_ReadPublic(index));
  // The name is a digest of the public area sent beside it: if they disagree, one was altered.
  if (pub.index !== index || !fromTpm('the NV public area', () => nvName(pub)).equals(name)) {
    throw new SwarmpayError('TPM_PROTOCOL', `the TPM's answer to TPM2_NV_ReadPublic for 0x${index.toString(16)} does not match its name`);
  }
  return { handle: index, name, pub };
}

