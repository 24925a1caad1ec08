/**
 * HMAC and salted sessions (TCG TPM 2.0 Library, Part 1, 19 "Authorizations and
 * Acknowledgments" and 21 "Session-based encryption"). A password crosses the bus in
 * the clear and the TPM's answer is taken on trust; with an HMAC session the authValue
 * never leaves this process and every answer is authenticated, and with a salt that only
 * the TPM can decrypt, only the TPM and this process know the key that encrypts secrets
 * (sealed data, new authValues, unsealed data) on the way.
 *
 * `execute` (execute.ts) does the per-command work with the state kept here: the HMACs,
 * the nonces and the parameter cipher. This module starts, names and flushes sessions.
 */
import { createCipheriv, createDecipheriv, createECDH, createHash, createHmac, randomBytes } from 'node:crypto';
import { FlushContext, NV_ReadPublic, PolicyAuthValue, StartAuthSession, nvName, type NvPublic } from './commands.js';
import { TPM_ALG, TPM_ECC_NIST_P256, TPM_SE, TPMA_SESSION } from './constants.js';
import type { Command, NamedHandle, Session } from './execute.js';
import { MarshalError, Writer, digestSize, hashName, marshalPublic, type Public, type SymDef } from './marshal.js';
import { SwarmpayError } from '../errors.js';

/** How sessions reach the TPM: `execute` on a transport, or `Tpm.run` with its retries. */
export type Run = <R>(cmd: Command<R>) => Promise<R>;

const EMPTY = Buffer.alloc(0);

// --- key derivation (Part 1, 11.4.10) -----------------------------------------------

/** Both KDFs are counter-mode: blocks until `bits` are there, excess bits of the first octet masked off. */
function kdf(bits: number, block: (counter: Buffer) => Buffer): Buffer {
  const bytes = Math.ceil(bits / 8);
  const parts: Buffer[] = [];
  for (let i = 1, got = 0; got < bytes; i++) {
    const counter = Buffer.alloc(4);
    counter.writeUInt32BE(i);
    const b = block(counter);
    parts.push(b);
    got += b.length;
  }
  const out = Buffer.concat(parts).subarray(0, bytes);
  if (bits % 8 !== 0) out[0]! &= (1 << bits % 8) - 1;
  return out;
}

/** The label as the KDFs take it: a C string, its terminating zero included. */
const label0 = (label: string) => Buffer.concat([Buffer.from(label, 'latin1'), Buffer.alloc(1)]);

/** Part 1, 11.4.10.2 KDFa (SP 800-108 counter mode with HMAC): HMAC(key, [i] ‖ label ‖ 0 ‖ contextU ‖ contextV ‖ [bits]). */
export function kdfa(hashAlg: number, key: Uint8Array, label: string, contextU: Uint8Array, contextV: Uint8Array, bits: number): Buffer {
  const size = Buffer.alloc(4);
  size.writeUInt32BE(bits);
  return kdf(bits, (counter) => createHmac(hashName(hashAlg), key).update(counter).update(label0(label)).update(contextU).update(contextV).update(size).digest());
}

/** Part 1, 11.4.10.3 KDFe (SP 800-56A concatenation KDF): H([i] ‖ Z ‖ label ‖ 0 ‖ partyUInfo ‖ partyVInfo). */
export function kdfe(hashAlg: number, z: Uint8Array, label: string, partyUInfo: Uint8Array, partyVInfo: Uint8Array, bits: number): Buffer {
  return kdf(bits, (counter) => createHash(hashName(hashAlg)).update(counter).update(z).update(label0(label)).update(partyUInfo).update(partyVInfo).digest());
}

// --- the salt (Part 1, Annex C.6.1) --------------------------------------------------

/** Big-endian coordinates shorter than the field (a leading zero dropped) are padded back for the point encoding. */
const pad = (b: Uint8Array, n: number) => (b.length >= n ? Buffer.from(b) : Buffer.concat([Buffer.alloc(n - b.length), b]));

/**
 * A salt for a session, encrypted to an ECC NIST P-256 decryption key by one-pass ECDH: an
 * ephemeral key e, Z = x([e]Q), salt = KDFe(nameAlg, Z, "SECRET", x(eG), x(Q)). What goes
 * to the TPM (encryptedSalt) is the ephemeral public point; only the holder of Q's private
 * key can compute Z from it. `ephemeralKey` is for known-answer tests only.
 */
export function eccSalt(tpmKey: Public, ephemeralKey?: Uint8Array): { salt: Buffer; encryptedSalt: Buffer } {
  const p = tpmKey.parms;
  if (p.type !== TPM_ALG.ECC || p.curve !== TPM_ECC_NIST_P256) {
    throw new SwarmpayError('USAGE', 'a session can only be salted with an ECC NIST P-256 key here');
  }
  const e = createECDH('prime256v1');
  if (ephemeralKey) e.setPrivateKey(Buffer.from(ephemeralKey));
  else e.generateKeys();
  let z: Buffer;
  try {
    z = e.computeSecret(Buffer.concat([Buffer.from([0x04]), pad(p.x, 32), pad(p.y, 32)]));
  } catch (err) {
    // The key came from the TPM: one that is not on the curve is not a key the TPM holds.
    throw new SwarmpayError('TPM_PROTOCOL', `the salt key's public point is not on P-256: ${(err as Error).message}`);
  }
  const q = e.getPublicKey();
  const ex = q.subarray(1, 33);
  const ey = q.subarray(33, 65);
  const salt = fromTpm('the salt key', () => kdfe(tpmKey.nameAlg, z, 'SECRET', ex, p.x, digestSize(tpmKey.nameAlg) * 8));
  return { salt, encryptedSalt: new Writer().tpm2b(ex).tpm2b(ey).done() };
}

/** Values the TPM sent (a public area, an NV public) may name a hash swarmpay does not know. */
function fromTpm<T>(what: string, f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof MarshalError) throw new SwarmpayError('TPM_PROTOCOL', `${what} from the TPM cannot be used: ${e.message}`);
    throw e;
  }
}

// --- sessions ------------------------------------------------------------------------

/** The parameter cipher swarmpay asks for: TPMT_SYM_DEF {AES, 128, CFB}. */
export const AES_128_CFB: SymDef = { alg: TPM_ALG.AES, keyBits: 128, mode: TPM_ALG.CFB };

/** A started HMAC or policy session: the state `execute` needs and updates from one command to the next. */
export interface AuthSession {
  readonly handle: number;
  /** TPM_SE.HMAC or TPM_SE.POLICY. */
  readonly type: number;
  /** The session's hash (authHash): of its HMACs, cpHash, rpHash and KDFs. */
  readonly hashAlg: number;
  /** Part 1, 19.6: KDFa(salt, "ATH", nonceTPM, nonceCaller); empty for an unsalted, unbound session. */
  readonly sessionKey: Buffer;
  /**
   * The TPM's latest nonce: every successful response rolls it, and the next command's HMAC
   * covers it. So a session serves one command at a time.
   */
  nonceTPM: Buffer;
  /** The parameter cipher the session was started with; null: it cannot encrypt. */
  readonly symmetric: SymDef | null;
  /**
   * Policy sessions only: PolicyAuthValue ran, so the entity's authValue joins the HMAC key
   * (Part 1, 19.6.13). The TPM resets a policy with each use, and `execute` clears this with it.
   */
  authValueNeeded: boolean;
  /** closed: flushed (by FlushContext, or by the TPM after a use without continueSession); untrusted: an answer failed its HMAC. */
  state: 'open' | 'closed' | 'untrusted';
}

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
    const name = fromTpm('the salt key', () => Buffer.concat([new Writer().u16(pub.nameAlg).done(), createHash(hashName(pub.nameAlg)).update(marshalPublic(pub)).digest()]));
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

/**
 * The authorization `execute` puts in a command for a started session. `authValue` is the
 * authValue of the entity the session authorizes (empty for the SRK, an NV index's own
 * for the index). A policy session puts it into its HMAC only after PolicyAuthValue, but
 * its parameter cipher always takes it (Part 1, 21). A session placed after the ones a
 * command's handles need authorizes nothing: it only encrypts, and its authValue is unused.
 */
export function hmacSession(session: AuthSession, authValue: Uint8Array = EMPTY, opts: HmacSessionOptions = {}): Session {
  if ((opts.decrypt || opts.encrypt) && session.symmetric === null) {
    throw new SwarmpayError('USAGE', `session 0x${session.handle.toString(16)} was started without a cipher: it cannot encrypt parameters`);
  }
  let attributes = opts.continueSession === false ? 0 : TPMA_SESSION.continueSession;
  if (opts.decrypt) attributes |= TPMA_SESSION.decrypt;
  if (opts.encrypt) attributes |= TPMA_SESSION.encrypt;
  return { kind: 'hmac', session, authValue: Buffer.from(authValue), attributes };
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

// --- the per-command computations `execute` uses (Part 1, 19.6 and 21) ----------------

/**
 * An authValue as the TPM uses it in keys: without trailing zeros (Part 1, 19.6.4 and 19.6.5).
 * HMAC zero-pads keys to a hash block, so this only shows when sessionKey ‖ authValue is
 * longer than one (64 bytes for SHA-256); the TPM strips them, so must we.
 */
export function authKey(authValue: Uint8Array): Buffer {
  let n = authValue.length;
  while (n > 0 && authValue[n - 1] === 0) n--;
  return Buffer.from(authValue.subarray(0, n));
}

/**
 * Part 1, 19.6.5: HMAC(key, pHash ‖ nonceNewer ‖ nonceOlder ‖ extra ‖ attributes):
 * for a command the nonces are (nonceCaller, nonceTPM) and `extra` the TPM nonces of other
 * sessions that encrypt; for a response (nonceTPM, nonceCaller) and nothing extra.
 */
export function sessionHmac(hashAlg: number, key: Uint8Array, pHash: Uint8Array, nonceNewer: Uint8Array, nonceOlder: Uint8Array, extra: Uint8Array[], attributes: number): Buffer {
  const h = createHmac(hashName(hashAlg), key).update(pHash).update(nonceNewer).update(nonceOlder);
  for (const n of extra) h.update(n);
  return h.update(Buffer.from([attributes])).digest();
}

/**
 * Part 1, 21: the first parameter's data (not its size) in CFB mode, key and IV from
 * KDFa(sessionKey ‖ authValue, "CFB", nonceNewer, nonceOlder): a command's by nonceCaller
 * then nonceTPM, a response's by the new nonceTPM then nonceCaller.
 */
export function parameterCipher(s: AuthSession, authValue: Uint8Array, nonceNewer: Uint8Array, nonceOlder: Uint8Array, data: Uint8Array, direction: 'encrypt' | 'decrypt'): Buffer {
  const sym = s.symmetric;
  if (sym === null || sym.alg !== TPM_ALG.AES || sym.mode !== TPM_ALG.CFB) throw new SwarmpayError('USAGE', 'parameter encryption is only AES in CFB mode here');
  const keyBytes = sym.keyBits / 8;
  const keyIv = kdfa(s.hashAlg, Buffer.concat([s.sessionKey, authKey(authValue)]), 'CFB', nonceNewer, nonceOlder, (keyBytes + 16) * 8);
  const algo = `aes-${sym.keyBits}-cfb`;
  const key = keyIv.subarray(0, keyBytes);
  const iv = keyIv.subarray(keyBytes);
  const c = direction === 'encrypt' ? createCipheriv(algo, key, iv) : createDecipheriv(algo, key, iv);
  return Buffer.concat([c.update(data), c.final()]);
}
