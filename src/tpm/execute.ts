/**
 * One generic marshal-send-unmarshal routine for every TPM command (Part 1, 18): the
 * command's handles, its authorization area built from the sessions of those it
 * authorizes (and of any that only encrypt), its parameters; the
 * response's code, handles and parameters. Commands themselves are typed descriptions.
 * For HMAC sessions (sessions.ts) it also computes each command's HMACs, checks the
 * response's, rolls the nonces and encrypts the first parameter each way (Part 1, 19, 21).
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { TPM_HT, TPM_RH, TPM_SE, TPM_ST, TPMA_SESSION } from './constants.js';
import { MarshalError, Reader, Writer, digestSize, hashName } from './marshal.js';
import { TpmError } from './rc.js';
import { authKey, parameterCipher, sessionHmac, type AuthSession } from './session-crypto.js';
import type { Transport } from './transport.js';
import { SwarmpayError } from '../errors.js';

/** A password (TPM_RS_PW), or a policy session whose authorization is the policy alone: sent as it is. */
export interface PlainSession {
  kind?: undefined;
  handle: number;
  attributes: number;
  /** The password for TPM_RS_PW; empty for a policy session without PolicyAuthValue/PolicyPassword. */
  hmac: Uint8Array;
}

/** A started HMAC or policy session (sessions.ts `hmacSession`): its HMAC is computed for each command. */
export interface HmacSession {
  kind: 'hmac';
  session: AuthSession;
  /** The authValue of the entity the session authorizes. */
  authValue: Uint8Array;
  /** TPMA_SESSION: continueSession, decrypt, encrypt. */
  attributes: number;
}

/** What authorizes a handle. */
export type Session = PlainSession | HmacSession;

/**
 * A started session sent after the authorizations (sessions.ts `encryptSession`): it
 * authorizes nothing and is there only to encrypt a parameter (Part 1, 21), so it has no
 * authValue, and a password, which cannot encrypt, cannot be one.
 */
export interface EncryptSession {
  kind: 'encrypt';
  session: AuthSession;
  /** TPMA_SESSION: decrypt and/or encrypt, and continueSession. */
  attributes: number;
}

export function passwordSession(password: Uint8Array = new Uint8Array(0)): Session {
  return { handle: TPM_RH.RS_PW, attributes: TPMA_SESSION.continueSession, hmac: password };
}

export function policySession(handle: number): Session {
  return { handle, attributes: TPMA_SESSION.continueSession, hmac: new Uint8Array(0) };
}

/** A handle with its name (Part 1, 16), which the cpHash of an HMAC session covers instead of the handle. */
export interface NamedHandle {
  handle: number;
  name: Uint8Array;
  /** Never: an AuthHandle given where a command takes no authorization would add a session. */
  auth?: never;
}

/**
 * A handle a command uses without authorizing it. PCRs, sessions and permanent handles are
 * their own names; objects and NV indices need theirs given for an HMAC session elsewhere in the command.
 */
export type Handle = number | NamedHandle;

/**
 * A handle with the session that authorizes it, as go-tpm's AuthHandle: the commands take
 * one for each handle the spec marks for authorization (Part 3, "@" handles) and a Handle
 * for the others, so a command's authorizations are its AuthHandles, in handle order, and
 * one cannot be missing or left over.
 */
export interface AuthHandle {
  handle: number;
  /** Needed when `auth` is an HMAC session and the handle is an object's or an NV index's. */
  name?: Uint8Array;
  auth: Session;
}

/** `h` authorized by `auth`. */
export function authorize(h: Handle, auth: Session): AuthHandle {
  return typeof h === 'number' ? { handle: h, auth } : { handle: h.handle, name: h.name, auth };
}

export interface Command<R> {
  /** The spec's name, for messages. */
  name: string;
  code: number;
  /** The handle area in wire order; the authorization area is the AuthHandles' sessions in the same order. */
  handles: readonly (Handle | AuthHandle)[];
  /** Sessions after the authorizations, which only encrypt (`withSessions`). */
  encryptSessions?: readonly EncryptSession[];
  params?: (w: Writer) => void;
  /** Whether the first command / response parameter is a TPM2B, the one a session may encrypt (Part 1, 21.1). */
  encryptable?: { command?: boolean; response?: boolean };
  /** How many handles the response carries before its parameters. */
  responseHandles?: number;
  parse?: (r: Reader, handles: number[]) => R;
}

/** Adds sessions that only encrypt to a command authorized otherwise (a password, a policy, nothing), as go-tpm's Execute(t, sessions...). */
export function withSessions<R>(cmd: Command<R>, ...extra: EncryptSession[]): Command<R> {
  return { ...cmd, encryptSessions: [...(cmd.encryptSessions ?? []), ...extra] };
}

/** A TPM takes at most three sessions with a command (MAX_SESSION_NUMBER). */
const MAX_SESSIONS = 3;

const isAuth = (h: Handle | AuthHandle): h is AuthHandle => typeof h !== 'number' && h.auth !== undefined;

/** What an HMAC session sent with a command, to check the response against. */
interface SentHmac {
  auth: HmacSession;
  index: number;
  nonceCaller: Buffer;
  /** The entity's authValue for the parameter cipher: empty unless the session authorizes a handle. */
  cipherAuth: Buffer;
  /** sessionKey ‖ authValue, the latter only where Part 1, 19.6 puts it into the HMAC. */
  hmacKey: Buffer;
  /** Whether the command's HMAC was empty: the TPM then answers with an empty one (Part 1, 19.6.5). */
  emptyHmac: boolean;
}

interface Marshalled {
  bytes: Buffer;
  /** How many sessions the command carried: the response must acknowledge each. */
  sessionCount: number;
  hmacs: SentHmac[];
  /** The session that has the TPM encrypt the response's first parameter, if any. */
  encrypt: SentHmac | null;
}

const u32 = (v: number) => new Writer().u32(v).done();

function usage(cmd: { name: string }, why: string): SwarmpayError {
  return new SwarmpayError('USAGE', `cannot send ${cmd.name}: ${why}`);
}

const handleOf = (h: Handle | AuthHandle) => (typeof h === 'number' ? h : h.handle);

/** The name standing for a handle in the cpHash. */
function handleName<R>(cmd: Command<R>, slot: Handle | AuthHandle): Uint8Array {
  if (typeof slot !== 'number' && slot.name) return slot.name;
  const h = handleOf(slot);
  const type = h >>> 24;
  if (type === TPM_HT.PCR || type === TPM_HT.HMAC_SESSION || type === TPM_HT.POLICY_SESSION || type === TPM_HT.PERMANENT) return u32(h);
  throw usage(cmd, `an HMAC session needs the name of handle 0x${h.toString(16)} (from Load, CreatePrimary, ReadPublic or NV_ReadPublic)`);
}

/** The bounds of the first parameter's data, when the first parameter is a TPM2B. */
function firstTpm2b(params: Buffer): [number, number] {
  if (params.length < 2) throw new MarshalError('no parameter to encrypt');
  const end = 2 + params.readUInt16BE(0);
  if (end > params.length) throw new MarshalError(`first parameter of ${end - 2} bytes in ${params.length - 2}`);
  return [2, end];
}

function cipherFirst(params: Buffer, f: (data: Buffer) => Buffer): Buffer {
  const [start, end] = firstTpm2b(params);
  return Buffer.concat([params.subarray(0, start), f(params.subarray(start, end)), params.subarray(end)]);
}

/** The one session with `attribute` (decrypt or encrypt), checked against what the command allows. */
function cipherSession<R>(cmd: Command<R>, hmacs: SentHmac[], sessions: Session[], attribute: number, allowed: boolean | undefined, what: string): SentHmac | null {
  const which = sessions.flatMap((s, i) => (s.attributes & attribute ? [i] : []));
  if (which.length === 0) return null;
  // Part 1, 21.1: one session may encrypt each way, and only an HMAC or policy session may.
  if (which.length > 1) throw usage(cmd, `only one session may encrypt the ${what}`);
  const sent = hmacs.find((h) => h.index === which[0]);
  if (!sent) throw usage(cmd, `a password or plain policy session cannot encrypt the ${what}`);
  if (!allowed) throw usage(cmd, `its first ${what} parameter is not a TPM2B, so no session can encrypt it`);
  return sent;
}

/**
 * The authorization area's sessions: the AuthHandles', then those that only encrypt, as
 * HMAC sessions with an empty authValue, since they authorize no entity that has one.
 */
function sessionsOf<R>(cmd: Command<R>): { sessions: Session[]; authCount: number } {
  const auths = cmd.handles.filter(isAuth).map((h) => h.auth);
  const extra = (cmd.encryptSessions ?? []).map((e): Session => ({ kind: 'hmac', session: e.session, authValue: Buffer.alloc(0), attributes: e.attributes }));
  const sessions = [...auths, ...extra];
  if (sessions.length > MAX_SESSIONS) throw usage(cmd, `${sessions.length} sessions, and a TPM takes at most ${MAX_SESSIONS}`);
  return { sessions, authCount: auths.length };
}

/** Part 1, 18.2: tag, size, code, handles, authorization area, parameters. */
function marshalCommand<R>(cmd: Command<R>): Marshalled {
  const { sessions, authCount } = sessionsOf(cmd);
  const hmacs: SentHmac[] = [];
  sessions.forEach((s, index) => {
    if (s.kind !== 'hmac') return;
    const session = s.session;
    if (session.state !== 'open') throw usage(cmd, `session 0x${session.handle.toString(16)} is ${session.state}`);
    const authorizes = index < authCount;
    const authValue = authorizes ? authKey(s.authValue) : Buffer.alloc(0);
    // Part 1, 19.6: an unbound HMAC session's key takes the entity's authValue; a policy
    // session's only after PolicyAuthValue. The parameter cipher takes it regardless.
    const inHmac = session.type === TPM_SE.HMAC || session.authValueNeeded;
    const hmacKey = Buffer.concat([session.sessionKey, inHmac ? authValue : Buffer.alloc(0)]);
    hmacs.push({ auth: s, index, nonceCaller: randomBytes(digestSize(session.hashAlg)), cipherAuth: authValue, hmacKey, emptyHmac: hmacKey.length === 0 });
  });
  const decrypt = cipherSession(cmd, hmacs, sessions, TPMA_SESSION.decrypt, cmd.encryptable?.command, 'command');
  const encrypt = cipherSession(cmd, hmacs, sessions, TPMA_SESSION.encrypt, cmd.encryptable?.response, 'response');

  const pw = new Writer();
  try {
    cmd.params?.(pw);
  } catch (e) {
    // A value the caller gave cannot be put on the wire (a PCR out of range, an oversize buffer).
    if (e instanceof MarshalError) throw usage(cmd, e.message);
    throw e;
  }
  let params = pw.done();
  if (decrypt) {
    const d = decrypt;
    try {
      params = cipherFirst(params, (data) => parameterCipher(d.auth.session, d.cipherAuth, d.nonceCaller, d.auth.session.nonceTPM, data, 'encrypt'));
    } catch (e) {
      if (e instanceof MarshalError) throw usage(cmd, e.message);
      throw e;
    }
  }

  const cpHashes = new Map<number, Buffer>();
  const cpHash = (alg: number) => {
    let h = cpHashes.get(alg);
    if (!h) {
      const c = createHash(hashName(alg)).update(u32(cmd.code));
      for (const h of cmd.handles) c.update(handleName(cmd, h));
      h = c.update(params).digest();
      cpHashes.set(alg, h);
    }
    return h;
  };
  const authArea = new Writer();
  sessions.forEach((s, index) => {
    if (s.kind !== 'hmac') {
      authArea.u32(s.handle).tpm2b(new Uint8Array(0)).u8(s.attributes).tpm2b(s.hmac);
      return;
    }
    const sent = hmacs.find((h) => h.index === index)!;
    const session = s.session;
    // Part 1, 19.6.5: the first session, if it authorizes, also binds the nonces of the
    // sessions that encrypt, so they cannot be swapped without it noticing.
    const extra: Buffer[] = [];
    if (index === 0 && authCount > 0) {
      if (decrypt && decrypt.index !== 0) extra.push(decrypt.auth.session.nonceTPM);
      if (encrypt && encrypt.index !== 0 && encrypt !== decrypt) extra.push(encrypt.auth.session.nonceTPM);
    }
    const hmac = sent.emptyHmac ? Buffer.alloc(0) : sessionHmac(session.hashAlg, sent.hmacKey, cpHash(session.hashAlg), sent.nonceCaller, session.nonceTPM, extra, s.attributes);
    authArea.u32(session.handle).tpm2b(sent.nonceCaller).u8(s.attributes).tpm2b(hmac);
  });

  const body = new Writer().u32(cmd.code);
  for (const h of cmd.handles) body.u32(handleOf(h));
  if (sessions.length > 0) body.sized32((w) => w.bytes(authArea.done()));
  const bytes = body.bytes(params).done();
  return { bytes: new Writer().u16(sessions.length > 0 ? TPM_ST.SESSIONS : TPM_ST.NO_SESSIONS).u32(bytes.length + 6).bytes(bytes).done(), sessionCount: sessions.length, hmacs, encrypt };
}

interface Acknowledgment {
  nonce: Buffer;
  attributes: number;
  hmac: Buffer;
}

/**
 * Part 1, 19.6.5: each HMAC session's answer is HMAC(key, rpHash ‖ nonceTPM ‖ nonceCaller ‖
 * attributes), rpHash = H(responseCode ‖ commandCode ‖ parameters) over the parameters as
 * sent (encrypted). Only when all match are the new nonces taken; otherwise the sessions
 * are spoiled, since what the TPM holds as their state is no longer known.
 */
function verifyResponse<R>(cmd: Command<R>, sent: SentHmac[], params: Buffer, acks: Acknowledgment[]): void {
  const rpHash = (alg: number) => createHash(hashName(alg)).update(u32(0)).update(u32(cmd.code)).update(params).digest();
  const bad = sent.find((s) => {
    const ack = acks[s.index]!;
    if (ack.nonce.length < 16) return true;
    if (s.emptyHmac) return ack.hmac.length !== 0;
    const session = s.auth.session;
    const want = sessionHmac(session.hashAlg, s.hmacKey, rpHash(session.hashAlg), ack.nonce, s.nonceCaller, [], ack.attributes);
    return ack.hmac.length !== want.length || !timingSafeEqual(ack.hmac, want);
  });
  if (bad) {
    for (const s of sent) s.auth.session.state = 'untrusted';
    throw new SwarmpayError('TPM_PROTOCOL', `the TPM's answer to ${cmd.name} fails its HMAC (session ${bad.index + 1})`, {
      hint: 'something between swarmpay and the TPM changed the answer, or the session is not the one the TPM holds; nothing from the answer was used',
    });
  }
  for (const s of sent) {
    const session = s.auth.session;
    const ack = acks[s.index]!;
    session.nonceTPM = ack.nonce;
    // The TPM resets a policy session's policy with each use, PolicyAuthValue with it.
    session.authValueNeeded = false;
    if ((ack.attributes & TPMA_SESSION.continueSession) === 0) session.state = 'closed';
  }
}

export async function execute<R = void>(t: Transport, cmd: Command<R>): Promise<R> {
  const sent = marshalCommand(cmd);
  const resp = await t.send(sent.bytes);
  let executed = false;
  try {
    const r = new Reader(resp);
    const tag = r.u16();
    if (tag !== TPM_ST.NO_SESSIONS && tag !== TPM_ST.SESSIONS) throw new MarshalError(`response tag 0x${tag.toString(16)} is not a TPM 2.0 tag`);
    const size = r.u32();
    if (size !== resp.length) throw new MarshalError(`response size field ${size} but ${resp.length} bytes`);
    const rc = r.u32();
    if (rc !== 0) throw new TpmError(rc, cmd.name);
    executed = true;
    const handles = Array.from({ length: cmd.responseHandles ?? 0 }, () => r.u32());
    if (sent.sessionCount === 0) {
      const result = cmd.parse ? cmd.parse(r, handles) : (undefined as R);
      r.end();
      return result;
    }
    // A command with sessions succeeds with them (Part 1, 18.3): an answer without could skip their HMACs.
    if (tag !== TPM_ST.SESSIONS) throw new MarshalError('a command with sessions was answered without');
    let params = r.bytes(r.u32());
    const acks = Array.from({ length: sent.sessionCount }, () => ({ nonce: r.tpm2b(), attributes: r.u8(), hmac: r.tpm2b() }));
    r.end();
    verifyResponse(cmd, sent.hmacs, params, acks);
    const e = sent.encrypt;
    if (e) {
      params = cipherFirst(params, (data) => parameterCipher(e.auth.session, e.cipherAuth, e.auth.session.nonceTPM, e.nonceCaller, data, 'decrypt'));
    }
    const pr = new Reader(params);
    const result = cmd.parse ? cmd.parse(pr, handles) : (undefined as R);
    pr.end();
    return result;
  } catch (e) {
    // The TPM ran the command and rolled its nonces, but the answer is unusable: the
    // sessions' state is no longer known, and a wrong HMAC could count against lockout.
    if (executed) for (const s of sent.hmacs) if (s.auth.session.state === 'open') s.auth.session.state = 'untrusted';
    if (e instanceof MarshalError) {
      throw new SwarmpayError('TPM_PROTOCOL', `the TPM's answer to ${cmd.name} is malformed: ${e.message}`, { hint: 'is this really a TPM 2.0? check --tpm' });
    }
    throw e;
  }
}
