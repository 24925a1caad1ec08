/**
 * HMAC and salted sessions against a real swtpm: the KDFs against known answers, an NV
 * counter whose authValue only an HMAC session proves (it never crosses the bus), answers
 * altered on the way refused, sealed data and new authValues that cross the bus only
 * encrypted, and tpm2-tools, an independent TPM stack, as the check on both ends.
 */
import { createECDH, createHash, createHmac, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  Create, FlushContext, GetCapability, GetRandom, Load, NV_DefineSpace, NV_Increment, NV_Read, NV_UndefineSpace, PolicyGetDigest, PolicyPCR,
  ReadPublic, Unseal, nvName, type NvPublic,
} from '../src/tpm/commands.js';
import { TPM_ALG, TPM_CAP, TPM_CC, TPM_RH, TPM_SE, TPMA_NV, TPMA_OBJECT } from '../src/tpm/constants.js';
import { authorize, execute, passwordSession, policySession, withSessions, type Command, type NamedHandle } from '../src/tpm/execute.js';
import { Writer, nameOf, type Public } from '../src/tpm/marshal.js';
import { RC, TpmError } from '../src/tpm/rc.js';
import { encryptSession, flushSession, hmacSession, nvIndex, policyAuthValue, startSaltedSession, startSession, type Run, type SaltKey } from '../src/tpm/sessions.js';
import { eccSalt, kdfa, kdfe, type AuthSession } from '../src/tpm/session-crypto.js';
import { SRK_PERSISTENT_HANDLE, sealedTemplate } from '../src/tpm/templates.js';
import { SwtpmTransport, type Transport } from '../src/tpm/transport.js';
import { tpm2 } from './helpers/tpm2-tools.js';
import { expectCode, failure } from './helpers/expect.js';
import { startTestTpm, type TestTpm } from './helpers/swtpm.js';

const EMPTY = new Uint8Array(0);
const hex = (s: string) => Buffer.from(s, 'hex');
const sha256 = (...parts: Uint8Array[]) => parts.reduce((h, p) => h.update(p), createHash('sha256')).digest();

describe('KDFa and KDFe (Part 1, 11.4.10)', () => {
  // Known answers from go-tpm (tpm2/test/testvectors), an implementation written apart from
  // ours: several hashes, an empty key, lengths that are not whole octets, zero bits.
  const kdfaVectors = [
    { hash: TPM_ALG.SHA1, key: 'ff', label: 'CFB', u: '86ed23c15d086e70a8eae700680e75d20cff', v: '51122c5879b277ff', bits: 140, out: '0d0be71c885d10eb61f2219000885c2d7658' },
    { hash: TPM_ALG.SHA1, key: '', label: 'IDENTITY', u: '4e462df0430f697bdb85c61a4ec7628943', v: 'ff80c59598996ff148c6574472ece01c608a02', bits: 283, out: '04512482418b546925489d197cadb96768cfe9744a9142f1360de6021a94bc8dda277697' },
    { hash: TPM_ALG.SHA256, key: 'aff14e568afc0ea51eea748c8915df067c7700', label: 'IDENTITY', u: 'ce4edfb881540700e300', v: '68ddb4a0e59d74cd34dfe631d91e1ea3fbc95865440adedff7e9d011890fba', bits: 116, out: '019ed5e0956338ddda4413ecee5cf2' },
    { hash: TPM_ALG.SHA256, key: '', label: 'SECRET', u: 'fbf51f160255018bbc8efea4c36ac4fb4cbba34e9eff', v: '3cea0fdc2600', bits: 200, out: 'a26c73dca13a265e09eec4b0abc4ecb2bf8d26db04e8823ee6' },
    { hash: TPM_ALG.SHA256, key: '2eff', label: 'CFB', u: 'ff2427af98c60f2bbc5480e24c64459dbe66a754f3', v: '69b182c92e3f79304513027c388100', bits: 261, out: '18bef37aae51edc4c229e179e7b401b98fc88eabd608262b41730d2d7c54927549' },
    {
      hash: TPM_ALG.SHA256, key: '80996c9a9c46e17ea2ed00', label: 'SECRET', u: '82d8b7ccc5cd8dcb65fda1951a693a2ae800', v: '', bits: 707,
      out: '07cb13574f71d0c44932f5b06be4c49fb422422db2542d2970047b17834e03ce5c3587655927a165eb033db564982df35a39dabd61993b50ce56b5477094c878ac28dffea75dbabbfabef0f97746f058fe678c5d89baaa7d4c',
    },
    {
      hash: TPM_ALG.SHA384, key: '3dda23f9861f77ca8d874ef6b900', label: 'SECRET', u: 'ff', v: '76356506b3564ce4204903d31777196beb2d4ed4d2dc37c6be8fd2c82038444b85390d', bits: 463,
      out: '52674662f7ecb3a0d95a73ef688eae2c39e9618404975ac63169a8b9cb304d58bb60e7b815f64109b45294cd8e3b598a0a6d081b6e5ce4b95ce7',
    },
    { hash: TPM_ALG.SHA512, key: '2e5dce8167f7dd660e34a09b7d7d613e6b99f280d99ec5775bc45e95fbff19c4c69ef7662b3dff', label: 'IDENTITY', u: 'a4', v: '2800', bits: 130, out: '0155bfb189bd92cd1b82dd72e1e70ebbe7' },
  ];
  const kdfeVectors = [
    { hash: TPM_ALG.SHA1, z: '4f60ef1e20d3a266e4ed45ff', label: 'STORAGE', u: 'd309dcef2fb76c', v: '81e625e75002c0596146a68669443ecbf699ff', bits: 103, out: '78e19b34a31ad8723f5eb1ea1a' },
    { hash: TPM_ALG.SHA1, z: '00d7ee02e0ef81ba58a52596015b2a72ec17aa52', label: 'SECRET', u: '00b3ff860f0968ba67b667887f', v: '001e8fc255871476d7b3e8', bits: 25, out: '000e99f3' },
    { hash: TPM_ALG.SHA256, z: 'ff739afe0f', label: 'STORAGE', u: 'a2c096d007a0ba160cb38065cc11205b2b433e53e8320a44c34907b15bff', v: 'ff85d3c6e10a7cd01e864680c30b', bits: 250, out: '0377bc98e95ee8e36d2ff9346c3f1ca9988f8044623845be4c6a0763c6045ab7' },
    {
      hash: TPM_ALG.SHA256, z: 'c7f03a7fede39dff', label: 'CFB', u: '', v: 'ff1302f28891ef4df39bb8a82e9f5aa0226f598bc994a07836af', bits: 491,
      out: '002d3433684fadcd03ac89b589a5e02bdb39f77732d6797a7c29949cfa974ef7174a85696f23a488e61cf4597083c06a5941534072a0188e5b51935bad34',
    },
    { hash: TPM_ALG.SHA384, z: '8e82b7dba7e16a0c52a964b53e8e42cea8920f10a56cff7617db5eb2016e4a2a298bc700', label: 'DUPLICATE', u: 'e1b99f7ac73ee8ae', v: 'dee477a0b300', bits: 0, out: '' },
    {
      hash: TPM_ALG.SHA512, z: '1dde4240aff56d1f4d45bb13613b1e4b6e74ec358b58482a7200', label: 'SECRET', u: 'a59f3ad153df9facf9b8b499f01b328364f786fae2f1e63e9e3193e43ae4d94a5e00129dd5115247ff',
      v: 'e614c2bcaa3dc6b5b771c08e046f84fc73746406f1', bits: 247, out: '3bd7263f965d7321f7d700ef8d372fd734c8edf5f9b5abb959787a504fba03',
    },
  ];

  test.each(kdfaVectors)('KDFa $label, $bits bits', ({ hash, key, label, u, v, bits, out }) => {
    expect(kdfa(hash, hex(key), label, hex(u), hex(v), bits).toString('hex')).toBe(out);
  });

  test.each(kdfeVectors)('KDFe $label, $bits bits', ({ hash, z, label, u, v, bits, out }) => {
    expect(kdfe(hash, hex(z), label, hex(u), hex(v), bits).toString('hex')).toBe(out);
  });

  test('the session key and the CFB key, written out from the spec: HMAC(key, [1] ‖ label ‖ 0 ‖ u ‖ v ‖ [bits]), block by block', () => {
    const key = randomBytes(32);
    const u = randomBytes(32);
    const v = randomBytes(32);
    const block = (i: number, label: string, bits: number) =>
      createHmac('sha256', key).update(new Writer().u32(i).done()).update(`${label}\0`).update(u).update(v).update(new Writer().u32(bits).done()).digest();
    expect(kdfa(TPM_ALG.SHA256, key, 'ATH', u, v, 256).equals(block(1, 'ATH', 256))).toBe(true);
    // AES-128 key and IV: 256 bits from one SHA-256 block; 384 bits take a second block.
    expect(kdfa(TPM_ALG.SHA256, key, 'CFB', u, v, 256).equals(block(1, 'CFB', 256))).toBe(true);
    expect(kdfa(TPM_ALG.SHA256, key, 'CFB', u, v, 384).equals(Buffer.concat([block(1, 'CFB', 384), block(2, 'CFB', 384)]).subarray(0, 48))).toBe(true);
  });

  test('the ECDH salt: the holder of the key recovers it from the ephemeral point alone', () => {
    // Stands in for the TPM: a P-256 decryption key whose private half only it has.
    const tpm = createECDH('prime256v1');
    const q = tpm.generateKeys();
    const key: Public = {
      nameAlg: TPM_ALG.SHA256,
      attributes: 0,
      authPolicy: EMPTY,
      parms: { type: TPM_ALG.ECC, symmetric: null, scheme: null, curve: 0x0003, x: q.subarray(1, 33), y: q.subarray(33) },
    };
    const { salt, encryptedSalt } = eccSalt(key);
    expect(salt.length).toBe(32);
    // encryptedSalt is a TPMS_ECC_POINT: two TPM2Bs of 32 bytes.
    expect(encryptedSalt.length).toBe(68);
    expect(encryptedSalt.readUInt16BE(0)).toBe(32);
    expect(encryptedSalt.readUInt16BE(34)).toBe(32);
    const ex = encryptedSalt.subarray(2, 34);
    const ey = encryptedSalt.subarray(36, 68);
    const z = tpm.computeSecret(Buffer.concat([Buffer.from([4]), ex, ey]));
    expect(kdfe(TPM_ALG.SHA256, z, 'SECRET', ex, key.parms.type === TPM_ALG.ECC ? key.parms.x : EMPTY, 256).equals(salt)).toBe(true);
    // A fresh ephemeral key each time, so a fresh salt; a fixed one gives a fixed salt.
    expect(eccSalt(key).salt.equals(salt)).toBe(false);
    const e = randomBytes(32);
    expect(eccSalt(key, e).salt.equals(eccSalt(key, e).salt)).toBe(true);
  });
});

describe('sessions on swtpm', () => {
  let sw: TestTpm;
  let srk: SaltKey;
  let srkH: NamedHandle;

  /** What a test sees of one connection: its commands, the wire both ways, and a hook to alter the next answer. */
  interface Client {
    run: Run;
    wire: Buffer[];
    tamper: ((response: Buffer) => Buffer) | null;
  }

  /**
   * Our client on its own connection, through a transport that records the bytes each way
   * (swtpm serves one connection at a time: it is closed before tpm2-tools run). Warnings
   * that mean "send it again" are retried, as Tpm.run does.
   */
  async function ours<T>(f: (c: Client) => Promise<T>): Promise<T> {
    const inner = await SwtpmTransport.connect(sw.state.host, sw.state.port);
    const wire: Buffer[] = [];
    let tamper: ((response: Buffer) => Buffer) | null = null;
    const t: Transport = {
      describe: inner.describe,
      async send(cmd) {
        wire.push(Buffer.from(cmd));
        let resp = await inner.send(cmd);
        if (tamper) {
          resp = tamper(resp);
          tamper = null;
        }
        wire.push(resp);
        return resp;
      },
      close: () => inner.close(),
    };
    const run: Run = async <R>(cmd: Command<R>): Promise<R> => {
      for (let attempt = 0; ; attempt++) {
        try {
          return await execute(t, cmd);
        } catch (e) {
          if (attempt < 8 && e instanceof TpmError && (e.is(RC.RETRY) || e.is(RC.YIELDED) || e.is(RC.TESTING))) {
            await sleep(10 * (attempt + 1));
            continue;
          }
          throw e;
        }
      }
    };
    const c: Client = {
      run,
      wire,
      get tamper() {
        return tamper;
      },
      set tamper(f) {
        tamper = f;
      },
    };
    try {
      return await f(c);
    } finally {
      await t.close();
    }
  }

  const onWire = (wire: Buffer[], secret: Uint8Array) => wire.some((b) => b.includes(Buffer.from(secret)));
  const tool = (cmd: string, ...args: string[]) => tpm2(sw.tcti, sw.dir, cmd, ...args);
  const file = (name: string) => path.join(sw.dir, name);
  const tpm2b = (b: Uint8Array) => Buffer.concat([new Writer().u16(b.length).done(), b]);

  /** The handles of one type (the top byte of `first`) the TPM holds. */
  const handles = async (run: Run, first: number) => ((await run(GetCapability(TPM_CAP.HANDLES, first, 64))).handles ?? []).filter((h) => h >>> 24 === first >>> 24);

  /** A PolicyPCR digest over PCR 16's current value, from a trial session. */
  async function pcrPolicy(run: Run): Promise<Buffer> {
    const trial = await startSession(run, TPM_SE.TRIAL, { symmetric: null });
    try {
      await run(PolicyPCR(trial.handle, EMPTY, [{ hash: TPM_ALG.SHA256, pcrs: [16] }]));
      return await run(PolicyGetDigest(trial.handle));
    } finally {
      await flushSession(run, trial);
    }
  }

  async function withSession<T>(run: Run, start: Promise<AuthSession>, f: (s: AuthSession) => Promise<T>): Promise<T> {
    const s = await start;
    try {
      return await f(s);
    } finally {
      await flushSession(run, s);
    }
  }

  beforeAll(async () => {
    sw = await startTestTpm();
    // tpm2-tools' swtpm TCTI takes the control channel to be the data port + 1.
    expect(sw.state.ctrlPort).toBe(sw.state.port + 1);
    const tpm = await sw.open();
    let pinned: Buffer;
    try {
      const persisted = await tpm.persistSrk();
      expect(persisted.persisted).toBe(true);
      pinned = persisted.name;
    } finally {
      await tpm.close();
    }
    // The public area is read afresh, the name it must hash to is the one pinned at provisioning.
    await ours(async (c) => {
      const pub = await c.run(ReadPublic(SRK_PERSISTENT_HANDLE));
      srk = { handle: SRK_PERSISTENT_HANDLE, public: pub.outPublic, name: pinned };
      srkH = { handle: SRK_PERSISTENT_HANDLE, name: pinned };
    });
  });

  afterAll(async () => {
    await sw?.stop();
  });

  describe('an NV counter with a 32-byte authValue (NT_COUNTER | AUTHWRITE | AUTHREAD | OWNERREAD | NO_DA)', () => {
    const index = 0x01535fe0;
    // Two trailing zeros: the TPM keeps an authValue without them (Part 1, 19.6.4). (HMAC pads
    // keys of up to a SHA-256 block with zeros anyway, so here they change no HMAC; a password
    // with them, ours and tpm2-tools', shows the TPM's side.)
    const authValue = Buffer.concat([randomBytes(29), Buffer.from([0x5a, 0, 0])]);
    const pub: NvPublic = {
      index,
      nameAlg: TPM_ALG.SHA256,
      attributes: TPMA_NV.NT_COUNTER | TPMA_NV.AUTHWRITE | TPMA_NV.AUTHREAD | TPMA_NV.OWNERREAD | TPMA_NV.NO_DA,
      authPolicy: EMPTY,
      dataSize: 8,
    };
    const indexArg = `0x${index.toString(16)}`;

    /** The counter, read with the index's authValue by an HMAC session and encrypted on the way by a salted one. */
    const readCounter = (c: Client, auth: AuthSession, enc: AuthSession, nv: NamedHandle) =>
      c.run(withSessions(NV_Read(authorize(nv, hmacSession(auth, authValue)), nv, 8), encryptSession(enc, { encrypt: true }))).then((b) => b.readBigUInt64BE());

    afterAll(async () => {
      await ours((c) => c.run(NV_UndefineSpace(authorize(TPM_RH.OWNER, passwordSession()), index))).catch(() => undefined);
    });

    test('defined through a salted session that decrypts: the authValue never crosses the bus in the clear', async () => {
      await ours(async (c) => {
        await withSession(c.run, startSaltedSession(c.run, srk), async (s) => {
          c.wire.length = 0;
          // The owner's authValue is empty, but the salt keys the HMAC and the cipher.
          await c.run(NV_DefineSpace(authorize(TPM_RH.OWNER, hmacSession(s, EMPTY, { decrypt: true })), authValue, pub));
          expect(onWire(c.wire, authValue.subarray(0, 29))).toBe(false);
        });
        const nv = await nvIndex(c.run, index);
        expect(Buffer.from(nv.name).equals(nvName(pub))).toBe(true);
        expect(nv.pub).toEqual({ ...pub, authPolicy: Buffer.alloc(0) });
      });
    });

    test('an HMAC session with the right authValue increments it; the name it signs must be the current one', async () => {
      await ours(async (c) => {
        // Unsalted and unbound: the HMAC key is the authValue alone.
        await withSession(c.run, startSession(c.run, TPM_SE.HMAC, { symmetric: null }), async (u) => {
          const fresh = await nvIndex(c.run, index);
          c.wire.length = 0;
          await c.run(NV_Increment(authorize(fresh, hmacSession(u, authValue)), fresh));
          expect(onWire(c.wire, authValue.subarray(0, 29))).toBe(false);
          // The first write set TPMA_NV_WRITTEN, so the name changed: an HMAC over the old one is refused.
          const written = await nvIndex(c.run, index);
          expect(written.pub.attributes & TPMA_NV.WRITTEN).toBe(TPMA_NV.WRITTEN);
          expect(Buffer.from(written.name).equals(nvName({ ...pub, attributes: pub.attributes | TPMA_NV.WRITTEN }))).toBe(true);
          const stale = (await failure(c.run(NV_Increment(authorize(fresh, hmacSession(u, authValue)), fresh)))) as TpmError;
          expect(stale).toBeInstanceOf(TpmError);
          expect(stale.rcName).toBe('TPM_RC_BAD_AUTH');

          // A salted session authorizes it as well, and a salted session encrypts the read.
          await withSession(c.run, startSaltedSession(c.run, srk), async (s) => {
            const before = await readCounter(c, u, s, written);
            await c.run(NV_Increment(authorize(written, hmacSession(s, authValue)), written));
            await c.run(NV_Increment(authorize(written, hmacSession(u, authValue)), written));
            expect(await readCounter(c, u, s, written)).toBe(before + 2n);
            // The owner may read it too (OWNERREAD), through the salted session alone.
            const byOwner = await c.run(NV_Read(authorize(TPM_RH.OWNER, hmacSession(s, EMPTY, { encrypt: true })), written, 8));
            expect(byOwner.readBigUInt64BE()).toBe(before + 2n);
          });
        });
      });
    });

    test('the TPM refuses it without the authValue: empty or wrong password, wrong HMAC (TPM_RC_BAD_AUTH, NO_DA)', async () => {
      await ours(async (c) => {
        const nv = await nvIndex(c.run, index);
        await withSession(c.run, startSession(c.run, TPM_SE.HMAC, { symmetric: null }), async (u) => {
          const refusals = [
            c.run(NV_Increment(authorize(index, passwordSession()), index)),
            c.run(NV_Increment(authorize(index, passwordSession(randomBytes(32))), index)),
            c.run(NV_Increment(authorize(nv, hmacSession(u, randomBytes(32))), nv)),
          ];
          for (const p of refusals) {
            const e = (await failure(p)) as TpmError;
            expect(e).toBeInstanceOf(TpmError);
            expect(['TPM_RC_BAD_AUTH', 'TPM_RC_AUTH_FAIL']).toContain(e.rcName);
          }
          // The refusals left the session usable: a refused command does not roll nonces. And
          // the authValue is the same without its trailing zeros, as the TPM keeps it.
          await c.run(NV_Increment(authorize(nv, hmacSession(u, authValue.subarray(0, 30))), nv));
        });
        // A password works too, but shows the authValue to anyone on the bus.
        c.wire.length = 0;
        await c.run(NV_Increment(authorize(index, passwordSession(authValue)), index));
        expect(onWire(c.wire, authValue.subarray(0, 29))).toBe(true);
      });
    });

    test('tpm2-tools: tpm2_nvincrement without the authValue is refused, with it accepted; tpm2_nvread agrees with our encrypted read', async () => {
      const read = () =>
        ours(async (c) => {
          const nv = await nvIndex(c.run, index);
          return withSession(c.run, startSession(c.run, TPM_SE.HMAC, { symmetric: null }), (u) =>
            withSession(c.run, startSaltedSession(c.run, srk), (s) => readCounter(c, u, s, nv)),
          );
        });
      const before = await read();
      const e = (await failure(tool('tpm2_nvincrement', indexArg))) as Error & { stderr?: string };
      expect(`${e.message}\n${e.stderr ?? ''}`).toMatch(/0x0*9a2|authorization failure/i);
      expect(await read()).toBe(before);
      await tool('tpm2_nvincrement', '-P', `hex:${authValue.toString('hex')}`, indexArg);
      expect(await read()).toBe(before + 1n);
      await tool('tpm2_nvread', '-C', 'o', '-s', '8', '-o', 'counter.bin', indexArg);
      expect(readFileSync(file('counter.bin')).readBigUInt64BE()).toBe(before + 1n);
    });
  });

  describe('answers altered between the TPM and us', () => {
    // A real TPM never sends a wrong HMAC, so the fault is put on the wire between it and
    // us, where an attacker on the bus would: the TPM's own answer, one bit changed.
    const flipAt = (at: (r: Buffer) => number) => (r: Buffer) => {
      const b = Buffer.from(r);
      b[at(b)]! ^= 0x01;
      return b;
    };

    test.each([
      ['the HMAC', (r: Buffer) => r.length - 1],
      ['the encrypted random bytes', () => 16],
      ['the nonceTPM', (r: Buffer) => 14 + r.readUInt32BE(10) + 2],
      ['the session attributes', (r: Buffer) => 14 + r.readUInt32BE(10) + 2 + 32],
    ])('a bit flipped in %s: refused as TPM_PROTOCOL, the session spoiled', async (_, at) => {
      await ours(async (c) => {
        await withSession(c.run, startSaltedSession(c.run, srk), async (s) => {
          const random = () => c.run(withSessions(GetRandom(16), encryptSession(s, { encrypt: true })));
          expect((await random()).length).toBe(16);
          c.tamper = flipAt(at);
          const e = await expectCode(random(), 'TPM_PROTOCOL');
          expect(e.message).toMatch(/the TPM's answer to TPM2_GetRandom fails its HMAC/);
          expect(s.state).toBe('untrusted');
          // Its nonces are no longer known: it is not used again (but still flushed).
          await expectCode(random(), 'USAGE');
        });
      });
    });

    test('an answer stripped of its sessions is refused: it would skip their HMACs', async () => {
      await ours(async (c) => {
        await withSession(c.run, startSaltedSession(c.run, srk), async (s) => {
          c.tamper = (r) => {
            const params = r.subarray(14, 14 + r.readUInt32BE(10));
            return new Writer().u16(0x8001).u32(10 + params.length).u32(0).bytes(params).done();
          };
          const e = await expectCode(c.run(withSessions(GetRandom(16), encryptSession(s, { encrypt: true }))), 'TPM_PROTOCOL');
          expect(e.message).toMatch(/malformed: a command with sessions was answered without/);
          expect(s.state).toBe('untrusted');
        });
      });
    });
  });

  describe('sealed data encrypted on the bus', () => {
    const secret = Buffer.from(`swarmpay sealed ${randomBytes(12).toString('hex')}`);
    /** Created in an encrypted session, for tpm2-tools to unseal. */
    let ourBlob: { public: Buffer; private: Buffer };

    async function load(run: Run, blob: { public: Uint8Array; private: Uint8Array }): Promise<NamedHandle> {
      const { handle, name } = await run(Load(authorize(srkH, passwordSession()), blob.private, blob.public));
      return { handle, name };
    }

    test('Create with decrypt and Unseal with encrypt in a salted session: the secret round-trips and is never on the wire; with passwords it is', async () => {
      await ours(async (c) => {
        await withSession(c.run, startSaltedSession(c.run, srk), async (s) => {
          c.wire.length = 0;
          // Encrypt too: outPrivate comes back encrypted and is decrypted here.
          const created = await c.run(Create(authorize(srkH, hmacSession(s, EMPTY, { decrypt: true, encrypt: true })), sealedTemplate(null), secret));
          ourBlob = { public: created.outPublicBytes, private: created.outPrivate };
          const obj = await c.run(Load(authorize(srkH, hmacSession(s, EMPTY)), created.outPrivate, created.outPublicBytes));
          expect(obj.name.equals(nameOf(created.outPublic))).toBe(true);
          try {
            const out = await c.run(Unseal(authorize(obj, hmacSession(s, EMPTY, { encrypt: true }))));
            expect(out.equals(secret)).toBe(true);
          } finally {
            await c.run(FlushContext(obj.handle));
          }
          expect(onWire(c.wire, secret)).toBe(false);
        });

        // The same with passwords: the secret is in the command, then in the answer.
        c.wire.length = 0;
        const plain = await c.run(Create(authorize(SRK_PERSISTENT_HANDLE, passwordSession()), sealedTemplate(null), secret));
        expect(onWire(c.wire, secret)).toBe(true);
        const obj = await load(c.run, { public: plain.outPublicBytes, private: plain.outPrivate });
        c.wire.length = 0;
        expect((await c.run(Unseal(authorize(obj.handle, passwordSession())))).equals(secret)).toBe(true);
        expect(onWire(c.wire, secret)).toBe(true);
        await c.run(FlushContext(obj.handle));
      });
    });

    test('a PCR-bound object: Create encrypted by a session after the password; Unseal through a salted policy session that encrypts', async () => {
      await ours(async (c) => {
        const policy = await pcrPolicy(c.run);
        c.wire.length = 0;
        const created = await withSession(c.run, startSaltedSession(c.run, srk), (s) =>
          c.run(withSessions(Create(authorize(srkH, passwordSession()), sealedTemplate(policy), secret), encryptSession(s, { decrypt: true }))),
        );
        const obj = await load(c.run, { public: created.outPublicBytes, private: created.outPrivate });
        try {
          await withSession(c.run, startSaltedSession(c.run, srk, TPM_SE.POLICY), async (p) => {
            await c.run(PolicyPCR(p.handle, EMPTY, [{ hash: TPM_ALG.SHA256, pcrs: [16] }]));
            // No PolicyAuthValue: the HMAC is keyed by the session key alone.
            expect((await c.run(Unseal(authorize(obj, hmacSession(p, EMPTY, { encrypt: true }))))).equals(secret)).toBe(true);
            // The use reset the policy: without PolicyPCR again the TPM refuses.
            expect(((await failure(c.run(Unseal(authorize(obj, hmacSession(p, EMPTY, { encrypt: true })))))) as TpmError).rcName).toBe('TPM_RC_POLICY_FAIL');
            await c.run(PolicyPCR(p.handle, EMPTY, [{ hash: TPM_ALG.SHA256, pcrs: [16] }]));
            expect((await c.run(Unseal(authorize(obj, hmacSession(p, EMPTY, { encrypt: true }))))).equals(secret)).toBe(true);
          });
          // As tpm2-tss does it: the policy session as it is, a salted session after it that only encrypts.
          const plainPolicy = await startSession(c.run, TPM_SE.POLICY, { symmetric: null });
          await withSession(c.run, startSaltedSession(c.run, srk), async (enc) => {
            await c.run(PolicyPCR(plainPolicy.handle, EMPTY, [{ hash: TPM_ALG.SHA256, pcrs: [16] }]));
            const out = await c.run(withSessions(Unseal(authorize(obj, policySession(plainPolicy.handle))), encryptSession(enc, { encrypt: true })));
            expect(out.equals(secret)).toBe(true);
          });
          await flushSession(c.run, plainPolicy);
        } finally {
          await c.run(FlushContext(obj.handle));
        }
        expect(onWire(c.wire, secret)).toBe(false);
      });
    });

    test('PolicyAuthValue: the object authValue then keys the policy session HMAC; a wrong one is refused', async () => {
      const userAuth = randomBytes(32);
      // H(0…0 ‖ TPM_CC_PolicyAuthValue) (Part 3, 23.17).
      const policy = sha256(Buffer.alloc(32), new Writer().u32(TPM_CC.PolicyAuthValue).done());
      // noDA, so the wrong authValue below does not count towards this swtpm's lockout.
      const template = { ...sealedTemplate(policy), attributes: sealedTemplate(policy).attributes | TPMA_OBJECT.noDA };
      await ours(async (c) => {
        const created = await withSession(c.run, startSaltedSession(c.run, srk), (s) =>
          c.run(Create(authorize(srkH, hmacSession(s, EMPTY, { decrypt: true })), template, secret, userAuth)),
        );
        const obj = await load(c.run, { public: created.outPublicBytes, private: created.outPrivate });
        try {
          await withSession(c.run, startSaltedSession(c.run, srk, TPM_SE.POLICY), async (p) => {
            await policyAuthValue(c.run, p);
            expect((await c.run(Unseal(authorize(obj, hmacSession(p, userAuth, { encrypt: true }))))).equals(secret)).toBe(true);
            expect(p.authValueNeeded).toBe(false);
            await policyAuthValue(c.run, p);
            const e = (await failure(c.run(Unseal(authorize(obj, hmacSession(p, randomBytes(32), { encrypt: true })))))) as TpmError;
            expect(e.rcName).toBe('TPM_RC_BAD_AUTH');
          });
          expect(onWire(c.wire, secret) || onWire(c.wire, userAuth)).toBe(false);
        } finally {
          await c.run(FlushContext(obj.handle));
        }
      });
    });

    test('a policy session without PolicyAuthValue: its HMAC leaves the object authValue out, its cipher takes it in', async () => {
      const userAuth = randomBytes(32);
      await ours(async (c) => {
        const policy = await pcrPolicy(c.run);
        const template = { ...sealedTemplate(policy), attributes: sealedTemplate(policy).attributes | TPMA_OBJECT.noDA };
        const created = await c.run(Create(authorize(SRK_PERSISTENT_HANDLE, passwordSession()), template, secret, userAuth));
        const obj = await load(c.run, { public: created.outPublicBytes, private: created.outPrivate });
        try {
          await withSession(c.run, startSaltedSession(c.run, srk, TPM_SE.POLICY), async (p) => {
            await c.run(PolicyPCR(p.handle, EMPTY, [{ hash: TPM_ALG.SHA256, pcrs: [16] }]));
            expect((await c.run(Unseal(authorize(obj, hmacSession(p, userAuth, { encrypt: true }))))).equals(secret)).toBe(true);
          });
        } finally {
          await c.run(FlushContext(obj.handle));
        }
      });
    });

    test('tpm2-tools unseal what we created in an encrypted session, and we unseal theirs in one', async () => {
      writeFileSync(file('enc.pub'), tpm2b(ourBlob.public));
      writeFileSync(file('enc.priv'), tpm2b(ourBlob.private));
      const srkArg = `0x${SRK_PERSISTENT_HANDLE.toString(16)}`;
      await tool('tpm2_load', '-C', srkArg, '-u', 'enc.pub', '-r', 'enc.priv', '-c', 'enc.ctx');
      await tool('tpm2_unseal', '-c', 'enc.ctx', '-o', 'enc.out');
      expect(readFileSync(file('enc.out')).equals(secret)).toBe(true);

      const theirs = Buffer.from(`sealed by tpm2-tools ${randomBytes(8).toString('hex')}`);
      writeFileSync(file('theirs.in'), theirs);
      await tool('tpm2_create', '-C', srkArg, '-i', 'theirs.in', '-u', 'theirs.pub', '-r', 'theirs.priv');
      const unTpm2b = (b: Buffer) => b.subarray(2, 2 + b.readUInt16BE(0));
      await ours(async (c) => {
        const obj = await load(c.run, { public: unTpm2b(readFileSync(file('theirs.pub'))), private: unTpm2b(readFileSync(file('theirs.priv'))) });
        try {
          c.wire.length = 0;
          const out = await withSession(c.run, startSaltedSession(c.run, srk), (s) => c.run(Unseal(authorize(obj, hmacSession(s, EMPTY, { encrypt: true })))));
          expect(out.equals(theirs)).toBe(true);
          expect(onWire(c.wire, theirs)).toBe(false);
        } finally {
          await c.run(FlushContext(obj.handle));
        }
      });
    });
  });

  describe('what cannot be sent', () => {
    test('refused before anything is sent: encryption of a parameter that is no TPM2B, a missing name, two decrypt sessions, a session without a cipher', async () => {
      await ours(async (c) => {
        await withSession(c.run, startSaltedSession(c.run, srk), async (s) => {
          c.wire.length = 0;
          const noTpm2b = await expectCode(c.run(NV_Increment(authorize(TPM_RH.OWNER, hmacSession(s, EMPTY, { decrypt: true })), 0x01535fe1)), 'USAGE');
          expect(noTpm2b.message).toMatch(/not a TPM2B/);
          const noName = await expectCode(c.run(Unseal(authorize(0x80000001, hmacSession(s)))), 'USAGE');
          expect(noName.message).toMatch(/needs the name of handle 0x80000001/);
          await withSession(c.run, startSaltedSession(c.run, srk), async (s2) => {
            c.wire.length = 0;
            const two = withSessions(Create(authorize(srkH, hmacSession(s, EMPTY, { decrypt: true })), sealedTemplate(null), randomBytes(8)), encryptSession(s2, { decrypt: true }));
            expect((await expectCode(c.run(two), 'USAGE')).message).toMatch(/only one session/);
            expect(c.wire).toEqual([]);
          });
          await withSession(c.run, startSession(c.run, TPM_SE.HMAC, { symmetric: null }), async (u) => {
            expect(() => hmacSession(u, EMPTY, { encrypt: true })).toThrow(/without a cipher/);
          });
        });
      });
    });

    test('a salt key that is not the pinned SRK is refused before the salt goes anywhere', async () => {
      await ours(async (c) => {
        // Someone on the bus answering ReadPublic with their own P-256 key.
        const theirs = createECDH('prime256v1').generateKeys();
        const forged: Public = { ...srk.public, parms: { ...(srk.public.parms as Extract<Public['parms'], { type: typeof TPM_ALG.ECC }>), x: theirs.subarray(1, 33), y: theirs.subarray(33) } };
        c.wire.length = 0;
        const e = await expectCode(startSaltedSession(c.run, { ...srk, public: forged }), 'TPM_WRONG_TPM');
        expect(e.message).toMatch(/not the one pinned/);
        expect(c.wire).toEqual([]);
        // The genuine one passes the same check.
        await withSession(c.run, startSaltedSession(c.run, srk), async (s) => expect(s.sessionKey.length).toBe(32));
      });
    });
  });

  describe('afterwards', () => {
    test('no session or object is left behind', async () => {
      await ours(async (c) => {
        expect(await handles(c.run, 0x02000000)).toEqual([]);
        expect(await handles(c.run, 0x03000000)).toEqual([]);
        expect(await handles(c.run, 0x80000000)).toEqual([]);
      });
    });
  });
});
