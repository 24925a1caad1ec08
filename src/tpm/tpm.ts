/**
 * The TPM as swarmpay uses it: open one by its --tpm spec, and the few operations the
 * keystore and attestation need, each a short sequence of the typed commands. TPM
 * response codes become SwarmpayErrors here, with what to do about them.
 */
import { randomInt } from 'node:crypto';
import { existsSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { SwarmpayError } from '../errors.js';
import { TPM_ALG, TPM_CAP, TPM_PT, TPM_RH, TPM_SE, TPM_SU, TPMA_NV } from './constants.js';
import {
  Create, CreatePrimary, EvictControl, FlushContext, GetCapability, GetRandom, Load, NV_DefineSpace, NV_Increment, NV_Read,
  NV_ReadPublic, NV_UndefineSpace, PCR_Read, PolicyGetDigest, PolicyPCR, Quote, ReadPublic, Startup, Unseal,
  type SignedAttestation,
} from './commands.js';
import { authorize, execute, passwordSession, type Command, type NamedHandle } from './execute.js';
import { flushSession, hmacSession, nvIndex, startSaltedSession, startSession, type SaltKey } from './sessions.js';
import type { AuthSession } from './session-crypto.js';
import { marshalPublic, type PcrSelection, type Public } from './marshal.js';
import { RC, TpmError } from './rc.js';
import { AK_TEMPLATE, SRK_PERSISTENT_HANDLE, SRK_TEMPLATE, sealedTemplate } from './templates.js';
import { DeviceTransport, SwtpmTransport, type Transport } from './transport.js';
import { runningSwtpm } from './swtpm-process.js';

export type TpmSpec = { kind: 'swtpm'; host: string; port: number } | { kind: 'device'; path: string } | { kind: 'none' };

const TPM_DEVICE = '/dev/tpmrm0';

/** Parses --tpm: auto, swtpm:HOST:PORT, device:PATH or none. `auto` resolves with `swtpmDir`. */
export function resolveTpmSpec(text: string, swtpmDir: string | null): TpmSpec {
  if (text === 'none') return { kind: 'none' };
  if (text === 'auto') {
    if (existsSync(TPM_DEVICE)) return { kind: 'device', path: TPM_DEVICE };
    const sw = swtpmDir === null ? null : runningSwtpm(swtpmDir);
    return sw ? { kind: 'swtpm', host: sw.host, port: sw.port } : { kind: 'none' };
  }
  if (text.startsWith('device:') && text.length > 7) return { kind: 'device', path: text.slice(7) };
  const m = /^swtpm:([^:]+):(\d{1,5})$/.exec(text);
  if (m && Number(m[2]) > 0 && Number(m[2]) < 65536) return { kind: 'swtpm', host: m[1]!, port: Number(m[2]) };
  throw new SwarmpayError('USAGE', `--tpm "${text}" is not a TPM swarmpay knows`, { hint: 'use auto, swtpm:HOST:PORT, device:/dev/tpmrm0 or none' });
}

export function describeSpec(spec: TpmSpec): string {
  return spec.kind === 'swtpm' ? `swtpm:${spec.host}:${spec.port}` : spec.kind === 'device' ? `device:${spec.path}` : 'none';
}

export interface SealedBlob {
  /** TPM2B_PUBLIC and TPM2B_PRIVATE contents of the sealed object, hex. */
  public: string;
  private: string;
  /** PCRs (SHA-256 bank) the object is bound to; empty for none. */
  pcrs: number[];
  /**
   * The name of the SRK it was sealed under, hex: the key that salts the unseal's session
   * must be this one, or whoever answers in the TPM's place would learn the session's key.
   */
  srkName?: string;
}

export interface TpmInfo {
  manufacturer: string;
  vendor: string;
  firmware: string;
}

export interface Quoted extends SignedAttestation {
  akPublic: Public;
  akName: Buffer;
  pcrValues: Map<number, Buffer>;
}

const ascii = (v: number) => Buffer.from([v >>> 24, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff]).toString('latin1').replace(/\0/g, '').trim();

/** NV indices swarmpay defines for its counters: the owner range 0x01000000-0x013FFFFF (TCG handle registry). */
const COUNTER_BASE = 0x01535000;

/**
 * A TPM, reached only while an operation runs: swtpm serves one connection at a time, so a
 * long-running command (`channel serve`) that held one would make every other command on
 * that TPM wait. Each operation holds the connection (`use`) for its whole sequence of
 * commands (a resource manager such as /dev/tpmrm0 flushes a connection's transient
 * objects and sessions when it closes) and lets go when the last one ends.
 */
export class Tpm {
  private started = false;
  private conn: Promise<Transport> | null = null;
  private holders = 0;

  private constructor(
    private readonly connect: () => Promise<Transport>,
    readonly spec: TpmSpec & { kind: 'swtpm' | 'device' },
  ) {}

  static async open(spec: TpmSpec): Promise<Tpm> {
    if (spec.kind === 'none') {
      throw new SwarmpayError('TPM_UNAVAILABLE', 'no TPM: neither /dev/tpmrm0 nor a software TPM for this datadir', {
        hint: 'pass --tpm swtpm:HOST:PORT or device:PATH; on regtest `swarmpay node start` also starts a software TPM',
      });
    }
    const tpm = new Tpm(() => (spec.kind === 'swtpm' ? SwtpmTransport.connect(spec.host, spec.port) : DeviceTransport.open(spec.path)), spec);
    // Reached once now, so that a wrong --tpm is said at once rather than at first use.
    await tpm.use(async () => undefined);
    return tpm;
  }

  get describe(): string {
    return this.spec.kind === 'swtpm' ? `swtpm ${this.spec.host}:${this.spec.port}` : this.spec.path;
  }

  /** Holds the connection while `f` runs (one is made if none is held), and lets go of it after the last holder. */
  async use<R>(f: (t: Transport) => Promise<R>): Promise<R> {
    this.holders++;
    try {
      this.conn ??= this.connect();
      return await f(await this.conn);
    } finally {
      if (--this.holders === 0 && this.conn !== null) {
        const c = this.conn;
        this.conn = null;
        await c.then((t) => t.close(), () => undefined);
      }
    }
  }

  /**
   * Runs a command. A TPM that was never started (TPM_RC_INITIALIZE) is started once
   * first; the warnings that mean "send it again" (TPM_RC_RETRY, for instance on the first
   * DA-protected use after start-up, YIELDED, TESTING) are retried a few times, as TSSs do.
   */
  run<R>(cmd: Command<R>): Promise<R> {
    return this.use(async (t) => {
      for (let attempt = 0; ; attempt++) {
        try {
          return await execute(t, cmd);
        } catch (e) {
          if (!(e instanceof TpmError)) throw e;
          if (!this.started && e.is(RC.INITIALIZE)) {
            this.started = true;
            await execute(t, Startup(TPM_SU.CLEAR));
            continue;
          }
          if (attempt < 8 && (e.is(RC.RETRY) || e.is(RC.YIELDED) || e.is(RC.TESTING))) {
            await sleep(10 * (attempt + 1));
            continue;
          }
          throw e;
        }
      }
    });
  }

  /** Lets go of a connection still held (an operation cut short); the next operation makes a new one. */
  async close(): Promise<void> {
    const c = this.conn;
    this.conn = null;
    await c?.then((t) => t.close(), () => undefined);
  }

  /** n random bytes; the TPM gives at most a digest's worth per call. */
  async random(n: number): Promise<Buffer> {
    const parts: Buffer[] = [];
    for (let got = 0; got < n; ) {
      const b = await this.run(GetRandom(Math.min(n - got, 32)));
      if (b.length === 0) throw new SwarmpayError('TPM_PROTOCOL', 'the TPM returned no random bytes');
      parts.push(b);
      got += b.length;
    }
    return Buffer.concat(parts).subarray(0, n);
  }

  async info(): Promise<TpmInfo> {
    const { properties } = await this.run(GetCapability(TPM_CAP.TPM_PROPERTIES, TPM_PT.MANUFACTURER, 8));
    const p = (k: number) => properties?.get(k) ?? 0;
    const vendor = [0, 1, 2, 3].map((i) => ascii(p(TPM_PT.VENDOR_STRING_1 + i))).join('');
    const fw1 = p(TPM_PT.FIRMWARE_VERSION_1);
    const fw2 = p(TPM_PT.FIRMWARE_VERSION_2);
    return { manufacturer: ascii(p(TPM_PT.MANUFACTURER)), vendor, firmware: `${fw1 >>> 16}.${fw1 & 0xffff}.${fw2 >>> 16}.${fw2 & 0xffff}` };
  }

  async lockout(): Promise<{ failedTries: number; maxTries: number; recoverySeconds: number }> {
    const { properties } = await this.run(GetCapability(TPM_CAP.TPM_PROPERTIES, TPM_PT.LOCKOUT_COUNTER, 4));
    return {
      failedTries: properties?.get(TPM_PT.LOCKOUT_COUNTER) ?? 0,
      maxTries: properties?.get(TPM_PT.MAX_AUTH_FAIL) ?? 0,
      recoverySeconds: properties?.get(TPM_PT.LOCKOUT_INTERVAL) ?? 0,
    };
  }

  /**
   * The storage root key: the persistent one at 0x81000001 if it is ours (same template,
   * so the same name), else a transient one recreated from the template. `flush` says
   * whether the caller must flush it.
   */
  async srk(): Promise<{ handle: number; name: Buffer; public: Public; flush: boolean }> {
    try {
      const pub = await this.run(ReadPublic(SRK_PERSISTENT_HANDLE));
      if (sameKey(pub.outPublic, SRK_TEMPLATE)) return { handle: SRK_PERSISTENT_HANDLE, name: pub.name, public: pub.outPublic, flush: false };
    } catch (e) {
      // Nothing at the handle, or a key of a kind we cannot parse: either way not ours.
      if (!(e instanceof TpmError || (e instanceof SwarmpayError && e.code === 'TPM_PROTOCOL'))) throw e;
    }
    const p = await this.run(CreatePrimary(authorize(TPM_RH.OWNER, passwordSession()), SRK_TEMPLATE));
    return { handle: p.handle, name: p.name, public: p.outPublic, flush: true };
  }

  /** Makes the SRK persistent at TCG's handle if nothing is there yet; returns its name. */
  persistSrk(): Promise<{ name: Buffer; persisted: boolean }> {
    return this.use(() => this.persistSrkHeld());
  }

  private async persistSrkHeld(): Promise<{ name: Buffer; persisted: boolean }> {
    const srk = await this.srk();
    if (!srk.flush) return { name: srk.name, persisted: true };
    try {
      await this.run(EvictControl(authorize(TPM_RH.OWNER, passwordSession()), srk.handle, SRK_PERSISTENT_HANDLE));
      return { name: srk.name, persisted: true };
    } catch (e) {
      // Another key already holds the handle (or the owner forbids it): a transient SRK serves as well.
      if (e instanceof TpmError) return { name: srk.name, persisted: false };
      throw e;
    } finally {
      await this.run(FlushContext(srk.handle));
    }
  }

  private withSrk<R>(f: (srk: { handle: number; name: Buffer; public: Public }) => Promise<R>): Promise<R> {
    return this.use(async () => {
      const srk = await this.srk();
      try {
        return await f(srk);
      } finally {
        if (srk.flush) await this.run(FlushContext(srk.handle));
      }
    });
  }

  private async withObject<R>(parent: number, blob: SealedBlob, f: (obj: NamedHandle) => Promise<R>): Promise<R> {
    const obj = await this.run(Load(authorize(parent, passwordSession()), Buffer.from(blob.private, 'hex'), Buffer.from(blob.public, 'hex')));
    try {
      return await f(obj);
    } finally {
      await this.run(FlushContext(obj.handle));
    }
  }

  /** A session (salted by `salt` when given), flushed after `f`, on the connection `f` runs on. */
  withSession<R>(type: number, salt: SaltKey | null, f: (s: AuthSession) => Promise<R>): Promise<R> {
    const run = this.run.bind(this);
    return this.use(async () => {
      const s = salt ? await startSaltedSession(run, salt, type) : await startSession(run, type, { symmetric: null });
      try {
        return await f(s);
      } finally {
        await flushSession(run, s).catch(() => undefined);
      }
    });
  }

  /** The policy digest that binds to the PCRs' current values, from a trial session. */
  pcrPolicyDigest(pcrs: number[]): Promise<Buffer> {
    return this.withSession(TPM_SE.TRIAL, null, async (s) => {
      await this.run(PolicyPCR(s.handle, new Uint8Array(0), [{ hash: TPM_ALG.SHA256, pcrs }]));
      return this.run(PolicyGetDigest(s.handle));
    });
  }

  /**
   * Seals `secret` under the SRK, bound to the PCRs' current values when `pcrs` is not
   * empty. The secret crosses the bus encrypted (a session salted to the SRK, decrypting
   * Create's first parameter), as tpm2-tss and go-tpm do. With `srkName` (a reseal) the
   * storage key must be that one.
   */
  async seal(secret: Uint8Array, pcrs: number[], srkName?: string): Promise<SealedBlob & { srkName: string }> {
    const policy = pcrs.length > 0 ? await this.pcrPolicyDigest(pcrs) : null;
    return this.withSrk((srk) =>
      this.withSession(TPM_SE.HMAC, pinned(srk, srkName), async (s) => {
        const c = await this.run(Create(authorize(srk, hmacSession(s, new Uint8Array(0), { decrypt: true })), sealedTemplate(policy), secret));
        return { public: c.outPublicBytes.toString('hex'), private: c.outPrivate.toString('hex'), pcrs, srkName: srk.name.toString('hex') };
      }),
    );
  }

  /**
   * Unseals a blob; the TPM refuses if it is another TPM, the PCRs changed, or (for an
   * object sealed before noDA) it is locked out. The secret comes back encrypted, in a
   * session salted to the SRK the blob names.
   */
  async unseal(blob: SealedBlob): Promise<Buffer> {
    try {
      return await this.withSrk(async (srk) => {
        const salt = pinned(srk, blob.srkName);
        return this.withObject(srk.handle, blob, (obj) =>
          this.withSession(blob.pcrs.length > 0 ? TPM_SE.POLICY : TPM_SE.HMAC, salt, async (s) => {
            if (blob.pcrs.length > 0) await this.run(PolicyPCR(s.handle, new Uint8Array(0), [{ hash: TPM_ALG.SHA256, pcrs: blob.pcrs }]));
            return this.run(Unseal(authorize(obj, hmacSession(s, new Uint8Array(0), { encrypt: true }))));
          }),
        );
      });
    } catch (e) {
      throw unsealError(e, blob);
    }
  }

  /** Reads SHA-256 PCR values; PCR_Read answers at most 8 at a time, so it is asked until all came. */
  async pcrRead(pcrs: number[]): Promise<Map<number, Buffer>> {
    const values = new Map<number, Buffer>();
    let left = [...new Set(pcrs)].sort((a, b) => a - b);
    while (left.length > 0) {
      const r = await this.run(PCR_Read([{ hash: TPM_ALG.SHA256, pcrs: left }]));
      const got = r.selection.find((s) => s.hash === TPM_ALG.SHA256)?.pcrs ?? [];
      if (got.length === 0) throw new SwarmpayError('TPM_REFUSED', `the TPM has no SHA-256 value for PCRs ${left.join(',')}`, { hint: 'choose PCRs 0-23 of the SHA-256 bank' });
      got.forEach((p, i) => values.set(p, r.digests[i]!));
      left = left.filter((p) => !values.has(p));
    }
    return values;
  }

  /**
   * Defines a monotonic counter at a free index of swarmpay's range; returns the index. Only
   * who knows `auth` can advance it (AUTHWRITE, noDA: a wrong guess costs no lockout, and a
   * 32-byte value cannot be guessed); anyone with owner read may read it. The auth crosses
   * the bus encrypted.
   */
  async defineCounter(auth: Uint8Array): Promise<number> {
    return this.withSrk((srk) =>
      this.withSession(TPM_SE.HMAC, { handle: srk.handle, public: srk.public }, async (s) => {
        for (let attempt = 0; attempt < 16; attempt++) {
          const index = COUNTER_BASE + randomInt(0x1000);
          try {
            await this.run(
              NV_DefineSpace(authorize(TPM_RH.OWNER, hmacSession(s, new Uint8Array(0), { decrypt: true })), auth, {
                index,
                nameAlg: TPM_ALG.SHA256,
                attributes: TPMA_NV.NT_COUNTER | TPMA_NV.AUTHWRITE | TPMA_NV.AUTHREAD | TPMA_NV.OWNERREAD | TPMA_NV.NO_DA,
                authPolicy: new Uint8Array(0),
                dataSize: 8,
              }),
            );
          } catch (e) {
            if (e instanceof TpmError && e.is(RC.NV_DEFINED)) continue;
            throw tpmRefused(e, 'define the anti-rollback counter');
          }
          // A counter cannot be read until incremented once (TPM_RC_NV_UNINITIALIZED).
          await this.incrementCounter(index, auth);
          return index;
        }
        throw new SwarmpayError('TPM_REFUSED', 'no free NV index for the anti-rollback counter', { hint: 'free NV space on the TPM' });
      }),
    );
  }

  /**
   * The counter's value as the TPM vouches for it: read with the counter's auth in a session
   * salted to the pinned SRK, so the answer carries an HMAC no one between us and the TPM can
   * forge (a forged lower value would pass a rolled-back keystore; a forged higher one lock
   * the wallet out).
   */
  async readCounter(index: number, auth: Uint8Array, srkName: string | undefined): Promise<bigint> {
    try {
      return await this.withSrk((srk) =>
        this.withSession(TPM_SE.HMAC, pinned(srk, srkName), async (s) => {
          const nv = await nvIndex(this.run.bind(this), index);
          return (await this.run(NV_Read(authorize(nv, hmacSession(s, auth)), nv, 8))).readBigUInt64BE();
        }),
      );
    } catch (e) {
      throw counterError(e, index, 'read the anti-rollback counter');
    }
  }

  /** The counter's value with the owner's (empty) authorization, unauthenticated: for `tpm status` to show, never to decide on. */
  async peekCounter(index: number): Promise<bigint> {
    try {
      return (await this.run(NV_Read(authorize(TPM_RH.OWNER, passwordSession()), index, 8))).readBigUInt64BE();
    } catch (e) {
      throw counterError(e, index, 'read the anti-rollback counter');
    }
  }

  /**
   * Advances the counter, proving `auth` by an HMAC (never sent); a counter defined before
   * counters had an auth takes the empty one.
   */
  async incrementCounter(index: number, auth: Uint8Array): Promise<void> {
    try {
      await this.withSession(TPM_SE.HMAC, null, async (s) => {
        const nv = await nvIndex(this.run.bind(this), index);
        await this.run(NV_Increment(authorize(nv, hmacSession(s, auth)), nv));
      });
    } catch (e) {
      throw tpmRefused(e, 'advance the anti-rollback counter');
    }
  }

  async undefineCounter(index: number): Promise<void> {
    await this.run(NV_UndefineSpace(authorize(TPM_RH.OWNER, passwordSession()), index));
  }

  async counterExists(index: number): Promise<boolean> {
    try {
      await this.run(NV_ReadPublic(index));
      return true;
    } catch (e) {
      if (e instanceof TpmError) return false;
      throw e;
    }
  }

  /**
   * Runs `f` with a primary key of the endorsement hierarchy (the AK, the EK) recreated from
   * its template on the connection `f` runs on, and flushed after.
   */
  withEndorsementKey<R>(template: Public, f: (k: { handle: number; outPublic: Public; name: Buffer }) => Promise<R>): Promise<R> {
    return this.use(async () => {
      const k = await this.run(CreatePrimary(authorize(TPM_RH.ENDORSEMENT, passwordSession()), template));
      try {
        return await f(k);
      } finally {
        await this.run(FlushContext(k.handle));
      }
    });
  }

  /** The attestation key, recreated from its template. */
  private withAk<R>(f: (ak: { handle: number; outPublic: Public; name: Buffer }) => Promise<R>): Promise<R> {
    return this.withEndorsementKey(AK_TEMPLATE, f);
  }

  async akPublic(): Promise<{ outPublic: Public; name: Buffer }> {
    return this.withAk(async (ak) => ({ outPublic: ak.outPublic, name: ak.name }));
  }

  /** A quote by the AK over SHA-256 PCRs with the caller's nonce, and the PCR values it covers. */
  async quote(nonce: Uint8Array, pcrs: number[]): Promise<Quoted> {
    const sel: PcrSelection[] = [{ hash: TPM_ALG.SHA256, pcrs: [...new Set(pcrs)].sort((a, b) => a - b) }];
    try {
      return await this.withAk(async (ak) => {
        const q = await this.run(Quote(authorize(ak.handle, passwordSession()), nonce, sel));
        return { ...q, akPublic: ak.outPublic, akName: ak.name, pcrValues: await this.pcrRead(sel[0]!.pcrs) };
      });
    } catch (e) {
      throw tpmRefused(e, 'make a quote');
    }
  }
}

/**
 * The SRK as a key to salt sessions with, refused unless it is the one the keystore recorded
 * (`srkName`, hex): a session salted to whatever answers could be read by whoever answered.
 */
function pinned(srk: { handle: number; name: Buffer; public: Public }, srkName: string | undefined): SaltKey {
  if (srkName !== undefined && srk.name.toString('hex') !== srkName) {
    throw new SwarmpayError('TPM_WRONG_TPM', `the keystore was sealed under the storage key ${srkName.slice(0, 16)}…, and this TPM's is ${srk.name.toString('hex').slice(0, 16)}…`, {
      hint: 'use the TPM it was provisioned on (--tpm), or restore the wallet from its mnemonic; nothing was changed',
    });
  }
  return { handle: srk.handle, public: srk.public, name: srk.name };
}

/** Whether a key created from `template` is this one: same type, attributes and parameters. */
function sameKey(pub: Public, template: Public): boolean {
  const strip = (p: Public) => {
    const c = structuredClone(p);
    if (c.parms.type === TPM_ALG.ECC) {
      c.parms.x = new Uint8Array(0);
      c.parms.y = new Uint8Array(0);
    }
    return marshalPublic(c).toString('hex');
  };
  return strip(pub) === strip(template);
}

function counterError(e: unknown, index: number, what: string): unknown {
  if (e instanceof TpmError && e.is(RC.HANDLE)) {
    return new SwarmpayError('TPM_WRONG_TPM', `the TPM has no anti-rollback counter at 0x${index.toString(16)}`, {
      hint: 'the keystore was provisioned on another TPM, or this TPM was cleared; restore the wallet from its mnemonic and provision again',
    });
  }
  return tpmRefused(e, what);
}

function tpmRefused(e: unknown, what: string): unknown {
  if (!(e instanceof TpmError)) return e;
  if (e.is(RC.LOCKOUT)) return lockoutError(e);
  return new SwarmpayError('TPM_REFUSED', `the TPM refused to ${what}: ${e.message}`, { hint: 'see `swarmpay tpm status`', details: { rc: e.rc } });
}

function lockoutError(e: TpmError): SwarmpayError {
  return new SwarmpayError('TPM_LOCKOUT', `the TPM is in dictionary-attack lockout (${e.rcName})`, {
    hint: 'wait for the lockout to expire (see `swarmpay tpm status`), or reset it with the lockout authorization (`tpm2_dictionarylockout --clear-lockout`); nothing was changed',
  });
}

function unsealError(e: unknown, blob: SealedBlob): unknown {
  if (!(e instanceof TpmError)) return e;
  if (e.is(RC.LOCKOUT)) return lockoutError(e);
  if (e.is(RC.POLICY_FAIL)) {
    return new SwarmpayError('TPM_POLICY_FAIL', `the TPM refuses to unseal the keystore: PCRs ${blob.pcrs.join(',')} differ from when it was sealed`, {
      hint: 'the device booted into a different state; if that is expected, restore the wallet from its mnemonic into a new datadir and run `swarmpay tpm provision` there; nothing was changed',
    });
  }
  // A Load refused with a format-1 error (integrity, a bad key) means the blob is not this TPM's;
  // a warning such as TPM_RC_OBJECT_MEMORY does not.
  if (e.is(RC.INTEGRITY) || e.is(RC.HANDLE) || (e.command === 'TPM2_Load' && (e.rc & 0x080) !== 0)) {
    return new SwarmpayError('TPM_WRONG_TPM', `the keystore was sealed by another TPM (or this TPM was cleared): ${e.message}`, {
      hint: 'use the TPM it was provisioned on (--tpm), or restore the wallet from its mnemonic; nothing was changed',
    });
  }
  return new SwarmpayError('TPM_REFUSED', `the TPM refused to unseal the keystore: ${e.message}`, { details: { rc: e.rc } });
}
