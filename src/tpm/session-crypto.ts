/**
 * The session computations of TCG TPM 2.0 Library Part 1 (11.4.10 KDFs, 19.6 HMACs, 21
 * parameter encryption) and the state of a started session: what `execute` needs for each
 * command, and nothing that sends one (sessions.ts starts and flushes sessions with
 * commands, which `execute` runs: keeping these apart keeps the modules acyclic).
 */
import { createCipheriv, createDecipheriv, createECDH, createHash, createHmac } from 'node:crypto';
import { TPM_ALG, TPM_ECC_NIST_P256 } from './constants.js';
import { MarshalError, Writer, digestSize, hashName, type Public, type SymDef } from './marshal.js';
import { SwarmpayError } from '../errors.js';

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
export function fromTpm<T>(what: string, f: () => T): T {
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
