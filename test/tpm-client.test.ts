/**
 * The TPM client against real swtpm instances: random, info, seal/unseal with and without
 * PCRs, the errors a keystore meets (policy failure, another TPM, tampering, lockout),
 * counters, PCR reads, the persistent SRK, quotes and certification, handle leaks, and
 * transports that meet no TPM or a peer that is not one (a real socket, not a mock).
 */
import { createHash, createPublicKey, randomBytes, verify } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { SwarmpayError } from '../src/errors.js';
import { Certify, Create, CreatePrimary, FlushContext, GetCapability, GetRandom, Load, NV_Increment, PCR_Extend, PCR_Read, ReadPublic } from '../src/tpm/commands.js';
import { TPMA_OBJECT, TPM_ALG, TPM_CAP, TPM_CC, TPM_GENERATED_VALUE, TPM_RH, TPM_ST } from '../src/tpm/constants.js';
import { authorize, execute, passwordSession } from '../src/tpm/execute.js';
import { Reader, Writer, nameOf, readAttest, readPublic, writePcrSelections, type Public, type Signature } from '../src/tpm/marshal.js';
import { AK_TEMPLATE, SRK_PERSISTENT_HANDLE, SRK_TEMPLATE, sealedTemplate } from '../src/tpm/templates.js';
import { SwtpmTransport } from '../src/tpm/transport.js';
import { Tpm, type SealedBlob } from '../src/tpm/tpm.js';
import { freePort } from '../src/util/daemon.js';
import { tpm2 } from './helpers/tpm2-tools.js';
import { expectCode, failure } from './helpers/expect.js';
import { startTestTpm, type TestTpm } from './helpers/swtpm.js';


/** A swtpm tpm2-tools can reach: their swtpm TCTI takes the control channel to be the data port + 1. */
async function startToolsTpm(): Promise<TestTpm> {
  const sw = await startTestTpm();
  expect(sw.state.ctrlPort).toBe(sw.state.port + 1);
  return sw;
}

/** The handles of one type (the top byte of `first`) the TPM holds. */
async function handles(tpm: Tpm, first: number): Promise<number[]> {
  const c = await tpm.run(GetCapability(TPM_CAP.HANDLES, first, 64));
  return (c.handles ?? []).filter((h) => h >>> 24 === first >>> 24);
}

const TRANSIENT = 0x80000000;
const HMAC_SESSIONS = 0x02000000;
const POLICY_SESSIONS = 0x03000000;
const PERSISTENT = 0x81000000;

/** Verifies a TPM's ECDSA P-256 signature over `message` with the signing key's public area. */
function ecdsaVerifies(pub: Public, message: Buffer, sig: Signature): boolean {
  if (pub.parms.type !== TPM_ALG.ECC || sig.alg !== TPM_ALG.ECDSA) throw new Error('not an ECDSA key and signature');
  const b64 = (b: Uint8Array) => Buffer.from(b).toString('base64url');
  const key = createPublicKey({ key: { kty: 'EC', crv: 'P-256', x: b64(pub.parms.x), y: b64(pub.parms.y) }, format: 'jwk' });
  const p1363 = Buffer.concat([Buffer.alloc(32 - sig.r.length), sig.r, Buffer.alloc(32 - sig.s.length), sig.s]);
  return verify('sha256', message, { key, dsaEncoding: 'ieee-p1363' }, p1363);
}

const sha256 = (...parts: Uint8Array[]) => parts.reduce((h, p) => h.update(p), createHash('sha256')).digest();

/** Part 3, 23.7: policyDigest' = H(policyDigest || TPM_CC_PolicyPCR || pcrs || H(PCR values)), from zeros. */
function expectedPcrPolicy(pcrs: number[], values: Buffer[]): Buffer {
  const w = new Writer().bytes(Buffer.alloc(32)).u32(TPM_CC.PolicyPCR);
  writePcrSelections(w, [{ hash: TPM_ALG.SHA256, pcrs }]);
  w.bytes(sha256(...values));
  return sha256(w.done());
}

const flip = (hex: string, at: number) => {
  const b = Buffer.from(hex, 'hex');
  b[at]! ^= 0x01;
  return b.toString('hex');
};

describe('TPM client on swtpm', () => {
  let sw: TestTpm;
  let tpm: Tpm;
  const secret = Buffer.from('swarmpay data key 0123456789abcdef', 'utf8');
  let unbound: SealedBlob;
  let bound: SealedBlob;

  beforeAll(async () => {
    sw = await startTestTpm();
    tpm = await sw.open();
  });
  afterAll(async () => {
    await tpm?.close();
    await sw?.stop();
  });

  /** Everything the client does, failures included, then the TPM's handle lists. */
  async function leakRound(): Promise<void> {
    const sealed = await tpm.seal(secret, []);
    await tpm.unseal(sealed);
    const pcrBound = await tpm.seal(secret, [16]);
    await tpm.unseal(pcrBound);
    await tpm.quote(randomBytes(16), [0, 1, 2]);
    await tpm.pcrPolicyDigest([0, 16]);
    await tpm.akPublic();
    await expectCode(tpm.unseal(bound), 'TPM_POLICY_FAIL');
    await expectCode(tpm.unseal({ ...unbound, private: flip(unbound.private, 40) }), 'TPM_WRONG_TPM');
    await expectCode(tpm.unseal({ ...bound, pcrs: [] }), 'TPM_REFUSED');
    expect(await handles(tpm, TRANSIENT)).toEqual([]);
    expect(await handles(tpm, HMAC_SESSIONS)).toEqual([]);
    expect(await handles(tpm, POLICY_SESSIONS)).toEqual([]);
    // Three transient slots on swtpm: a leak would show as TPM_RC_OBJECT_MEMORY long before 20 rounds.
    for (let i = 0; i < 20; i++) await tpm.unseal(pcrBound);
    expect(await handles(tpm, TRANSIENT)).toEqual([]);
  }

  test('GetRandom returns the sizes asked for, different each time', async () => {
    for (const n of [0, 1, 16, 32, 48, 64]) expect((await tpm.random(n)).length).toBe(n);
    expect((await tpm.random(32)).equals(await tpm.random(32))).toBe(false);
    // More than a digest's worth: the TPM may return fewer (Part 3, 16.1), never more.
    const big = await tpm.run(GetRandom(1000));
    expect(big.length).toBeGreaterThanOrEqual(32);
    expect(big.length).toBeLessThanOrEqual(1000);
  });

  test('info() reads the manufacturer, vendor and firmware', async () => {
    const info = await tpm.info();
    expect(info.manufacturer).toBe('IBM');
    expect(info.vendor).toMatch(/SW/);
    expect(info.firmware).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
  });

  test('seal and unseal without PCRs', async () => {
    const sealed = await tpm.seal(secret, []);
    unbound = sealed;
    expect(sealed.pcrs).toEqual([]);
    // The SRK's name: SHA-256 name algorithm and a 32-byte digest.
    expect(sealed.srkName).toMatch(/^000b[0-9a-f]{64}$/);
    const pub = new Reader(Buffer.from(sealed.public, 'hex')).sizedAll(readPublic);
    expect(pub.parms.type).toBe(TPM_ALG.KEYEDHASH);
    expect(pub.authPolicy.length).toBe(0);
    expect((await tpm.unseal(unbound)).equals(secret)).toBe(true);
    expect((await tpm.unseal(unbound)).equals(secret)).toBe(true); // nothing was consumed
    // Every seal of the same secret is a new object.
    expect((await tpm.seal(secret, [])).private).not.toBe(sealed.private);
  });

  test('seal with PCR 16: the policy is PolicyPCR over its current value, and it unseals', async () => {
    const pcr16 = (await tpm.pcrRead([16])).get(16)!;
    expect((await tpm.pcrPolicyDigest([16])).equals(expectedPcrPolicy([16], [pcr16]))).toBe(true);
    bound = await tpm.seal(secret, [16]);
    expect(bound.pcrs).toEqual([16]);
    const pub = new Reader(Buffer.from(bound.public, 'hex')).sizedAll(readPublic);
    expect(Buffer.from(pub.authPolicy).equals(expectedPcrPolicy([16], [pcr16]))).toBe(true);
    expect((await tpm.unseal(bound)).equals(secret)).toBe(true);
  });

  test('after PCR_Extend of PCR 16 the bound blob is refused with TPM_POLICY_FAIL; the unbound one still unseals', async () => {
    const before = (await tpm.pcrRead([16])).get(16)!;
    const digest = randomBytes(32);
    await tpm.run(PCR_Extend(authorize(16, passwordSession()), TPM_ALG.SHA256, digest));
    const after = (await tpm.pcrRead([16])).get(16)!;
    expect(after.equals(sha256(before, digest))).toBe(true);

    const e = await expectCode(tpm.unseal(bound), 'TPM_POLICY_FAIL');
    expect(e.message).toMatch(/PCRs 16/);
    expect((await tpm.unseal(unbound)).equals(secret)).toBe(true);
    // Sealed again now, it binds to the new value.
    const again = await tpm.seal(secret, [16]);
    expect((await tpm.unseal(again)).equals(secret)).toBe(true);
  });

  test('a bound blob refuses a password (TPM_REFUSED, TPM_RC_AUTH_UNAVAILABLE): only the policy releases it', async () => {
    const e = await expectCode(tpm.unseal({ ...bound, pcrs: [] }), 'TPM_REFUSED');
    expect(e.message).toMatch(/TPM_RC_AUTH_UNAVAILABLE/);
    expect(e.details).toEqual({ rc: 0x12f });
  });

  test('a tampered blob is refused by TPM2_Load, reported as TPM_WRONG_TPM', async () => {
    // A bit flipped in the encrypted sensitive area: the integrity HMAC no longer matches.
    const priv = Buffer.from(unbound.private, 'hex');
    const e1 = await expectCode(tpm.unseal({ ...unbound, private: flip(unbound.private, priv.length - 5) }), 'TPM_WRONG_TPM');
    expect(e1.message).toMatch(/TPM_RC_INTEGRITY/);
    // A bit flipped in the integrity HMAC itself (after its u16 size).
    await expectCode(tpm.unseal({ ...unbound, private: flip(unbound.private, 4) }), 'TPM_WRONG_TPM');
    // The public area changed (userWithAuth cleared): its name, bound into the private, differs.
    const pub = Buffer.from(unbound.public, 'hex');
    await expectCode(tpm.unseal({ ...unbound, public: flip(unbound.public, 7) }), 'TPM_WRONG_TPM');
    expect(pub.readUInt32BE(4) & 0x40).toBe(0x40);
    expect((await tpm.unseal(unbound)).equals(secret)).toBe(true);
  });

  test('a blob sealed on one swtpm is refused by another with TPM_WRONG_TPM', async () => {
    const other = await startTestTpm();
    try {
      const t2 = await other.open();
      try {
        // Its storage key is not the one the blob names: refused before the blob is even loaded.
        const e = await expectCode(t2.unseal(unbound), 'TPM_WRONG_TPM');
        expect(e.message).toMatch(/sealed under the storage key/);
        // Without the name, the TPM itself refuses the blob at Load.
        expect((await expectCode(t2.unseal({ ...unbound, srkName: undefined }), 'TPM_WRONG_TPM')).message).toMatch(/TPM2_Load/);
        await expectCode(t2.unseal(bound), 'TPM_WRONG_TPM');
        // And vice versa, while each still unseals its own.
        const theirs = await t2.seal(secret, []);
        await expectCode(tpm.unseal(theirs), 'TPM_WRONG_TPM');
        expect((await t2.unseal(theirs)).equals(secret)).toBe(true);
        expect(await handles(t2, TRANSIENT)).toEqual([]);
      } finally {
        await t2.close();
      }
    } finally {
      await other.stop();
    }
  });

  test('counters: define, read, increment monotonically, undefine; only who knows the auth advances one', async () => {
    const auth = randomBytes(32);
    const read = (i: number) => tpm.readCounter(i, auth, undefined);
    const index = await tpm.defineCounter(auth);
    expect(index >>> 24).toBe(0x01);
    expect(await tpm.counterExists(index)).toBe(true);
    const v0 = await read(index);
    expect(v0).toBeGreaterThanOrEqual(1n); // defineCounter increments once so it can be read
    expect(await tpm.peekCounter(index)).toBe(v0);
    await tpm.incrementCounter(index, auth);
    expect(await read(index)).toBe(v0 + 1n);
    await tpm.incrementCounter(index, auth);
    await tpm.incrementCounter(index, auth);
    expect(await read(index)).toBe(v0 + 3n);
    // A stranger on the same TPM: another auth in an HMAC, or no password at all, is refused by the TPM.
    await expectCode(tpm.incrementCounter(index, randomBytes(32)), 'TPM_REFUSED');
    await expect(tpm.run(NV_Increment(authorize(index, passwordSession()), index))).rejects.toMatchObject({ rcName: expect.stringMatching(/BAD_AUTH|AUTH_FAIL/) });
    // A read with the wrong auth is refused too: the value we decide on comes only with the counter's auth.
    await expectCode(tpm.readCounter(index, randomBytes(32), undefined), 'TPM_REFUSED');
    expect(await read(index)).toBe(v0 + 3n);
    // A second counter is distinct and does not move the first.
    const other = await tpm.defineCounter(auth);
    expect(other).not.toBe(index);
    await tpm.incrementCounter(other, auth);
    expect(await read(index)).toBe(v0 + 3n);
    await tpm.undefineCounter(other);
    expect(await tpm.counterExists(other)).toBe(false);
    await expectCode(read(other), 'TPM_WRONG_TPM');
  });

  test('a counter value changed on its way from the TPM (one less: a rolled-back keystore would pass) fails the answer\'s HMAC; the unauthenticated peek is fooled', async () => {
    const auth = randomBytes(32);
    const index = await tpm.defineCounter(auth);
    const value = await tpm.readCounter(index, auth, undefined);
    await tpm.close();
    // Between us and swtpm, something that lowers the last byte of every NV_Read answer's value:
    // a fault on the bus a real TPM cannot show.
    const to = sw.spec;
    if (to.kind !== 'swtpm') throw new Error('a swtpm is needed');
    const proxy = net.createServer((c) => {
      const up = net.connect(to.port, to.host);
      let nvRead = false;
      c.on('data', (d: Buffer) => {
        nvRead = d.length >= 10 && d.readUInt32BE(6) === TPM_CC.NV_Read;
        up.write(d);
      });
      up.on('data', (d: Buffer) => {
        if (nvRead && d.length >= 20 && d.readUInt32BE(6) === 0) {
          const at = d.readUInt16BE(0) === TPM_ST.SESSIONS ? 14 + 2 + 7 : 10 + 2 + 7;
          d[at] = d[at]! - 1;
        }
        c.write(d);
      });
      c.on('close', () => up.destroy());
      up.on('close', () => c.destroy());
      c.on('error', () => undefined);
      up.on('error', () => undefined);
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
    try {
      const via = await Tpm.open({ kind: 'swtpm', host: '127.0.0.1', port: (proxy.address() as net.AddressInfo).port });
      expect(await via.peekCounter(index)).toBe(value - 1n);
      const e = await expectCode(via.readCounter(index, auth, undefined), 'TPM_PROTOCOL');
      expect(e.message).toMatch(/HMAC/);
      await via.close();
    } finally {
      proxy.close();
      tpm = await sw.open();
    }
  });

  test('readCounter of an index that was never defined is TPM_WRONG_TPM', async () => {
    expect(await tpm.counterExists(0x01000123)).toBe(false);
    const e = await expectCode(tpm.readCounter(0x01000123, randomBytes(32), undefined), 'TPM_WRONG_TPM');
    expect(e.message).toMatch(/0x1000123/);
  });

  test('pcrRead of PCRs 0..23 returns all 24, though PCR_Read answers 8 at a time', async () => {
    const one = await tpm.run(PCR_Read([{ hash: TPM_ALG.SHA256, pcrs: Array.from({ length: 24 }, (_, i) => i) }]));
    expect(one.digests.length).toBeLessThanOrEqual(8);
    const all = await tpm.pcrRead(Array.from({ length: 24 }, (_, i) => 23 - i));
    expect([...all.keys()].sort((a, b) => a - b)).toEqual(Array.from({ length: 24 }, (_, i) => i));
    for (const v of all.values()) expect(v.length).toBe(32);
    expect(all.get(0)!.equals(Buffer.alloc(32))).toBe(true);
    expect(all.get(16)!.equals(Buffer.alloc(32))).toBe(false); // extended above
    // The same values, asked one at a time.
    for (const p of [0, 7, 8, 15, 16, 23]) expect((await tpm.pcrRead([p])).get(p)!.equals(all.get(p)!)).toBe(true);
  });

  test('FlushContext frees everything (transient SRK): no objects or sessions left after seal, unseal, quote and their failures', async () => {
    // A new connection to the same TPM: handles belong to the TPM, not to a connection.
    await tpm.close();
    tpm = await sw.open();
    expect(await handles(tpm, TRANSIENT)).toEqual([]);
    const srk = await tpm.srk();
    expect(srk.flush).toBe(true);
    await tpm.run(FlushContext(srk.handle));
    await leakRound();
  });

  test('persistSrk puts the SRK at 0x81000001; srk() then returns it without flush; a second persistSrk is a no-op', async () => {
    expect(await handles(tpm, PERSISTENT)).toEqual([]);
    const transient = await tpm.srk();
    expect(transient.flush).toBe(true);
    await tpm.run(FlushContext(transient.handle));

    const p = await tpm.persistSrk();
    expect(p.persisted).toBe(true);
    expect(await handles(tpm, PERSISTENT)).toEqual([SRK_PERSISTENT_HANDLE]);
    // The primary key is a function of seed and template: the same key, the same name.
    expect(p.name.equals(transient.name)).toBe(true);

    const srk = await tpm.srk();
    expect(srk).toMatchObject({ handle: SRK_PERSISTENT_HANDLE, name: p.name, flush: false });
    const rp = await tpm.run(ReadPublic(SRK_PERSISTENT_HANDLE));
    expect(nameOf(rp.outPublic).equals(p.name)).toBe(true);
    expect(rp.outPublic.attributes).toBe(SRK_TEMPLATE.attributes);

    const again = await tpm.persistSrk();
    expect(again).toEqual({ name: p.name, persisted: true });
    expect(await handles(tpm, PERSISTENT)).toEqual([SRK_PERSISTENT_HANDLE]);
    expect(await handles(tpm, TRANSIENT)).toEqual([]);

    // Blobs sealed under the transient SRK unseal under the persistent one: it is the same key.
    expect((await tpm.unseal(unbound)).equals(secret)).toBe(true);
    const sealed = await tpm.seal(secret, []);
    expect(sealed.srkName).toBe(p.name.toString('hex'));
    expect((await tpm.unseal(sealed)).equals(secret)).toBe(true);
  });

  test('quote: a TPMS_ATTEST with the nonce as extraData, the PCR digest, signed by the AK', async () => {
    const nonce = randomBytes(32);
    const q = await tpm.quote(nonce, [16, 0, 16]);
    const r = new Reader(q.attest);
    const a = readAttest(r, TPM_ST.ATTEST_QUOTE);
    r.end();
    expect(a.magic).toBe(TPM_GENERATED_VALUE);
    expect(a.extraData.equals(nonce)).toBe(true);
    expect(a.quote!.pcrSelect).toEqual([{ hash: TPM_ALG.SHA256, pcrs: [0, 16] }]);
    expect([...q.pcrValues.keys()].sort((x, y) => x - y)).toEqual([0, 16]);
    expect(a.quote!.pcrDigest.equals(sha256(q.pcrValues.get(0)!, q.pcrValues.get(16)!))).toBe(true);
    expect(q.signature.alg).toBe(TPM_ALG.ECDSA);
    expect(ecdsaVerifies(q.akPublic, q.attest, q.signature)).toBe(true);
    expect(ecdsaVerifies(q.akPublic, Buffer.concat([q.attest, Buffer.from([0])]), q.signature)).toBe(false);
    expect(nameOf(q.akPublic).equals(q.akName)).toBe(true);
    // The AK is a primary key: the same one every time, until the endorsement seed changes.
    expect((await tpm.akPublic()).name.equals(q.akName)).toBe(true);
  });

  test('Certify: the AK vouches for a loaded sealed object; the certified name is the object name', async () => {
    const srk = await tpm.srk();
    const obj = await tpm.run(Load(authorize(srk.handle, passwordSession()), Buffer.from(unbound.private, 'hex'), Buffer.from(unbound.public, 'hex')));
    const ak = await tpm.run(CreatePrimary(authorize(TPM_RH.ENDORSEMENT, passwordSession()), AK_TEMPLATE));
    try {
      const nonce = randomBytes(20);
      const c = await tpm.run(Certify(authorize(obj.handle, passwordSession()), authorize(ak.handle, passwordSession()), nonce));
      const r = new Reader(c.attest);
      const a = readAttest(r);
      r.end();
      expect(a.magic).toBe(TPM_GENERATED_VALUE);
      expect(a.type).toBe(TPM_ST.ATTEST_CERTIFY);
      expect(a.extraData.equals(nonce)).toBe(true);
      expect(a.certify!.name.equals(obj.name)).toBe(true);
      const pub = new Reader(Buffer.from(unbound.public, 'hex')).sizedAll(readPublic);
      expect(a.certify!.name.equals(nameOf(pub))).toBe(true);
      expect(ecdsaVerifies(ak.outPublic, c.attest, c.signature)).toBe(true);
    } finally {
      await tpm.run(FlushContext(ak.handle));
      await tpm.run(FlushContext(obj.handle));
      if (srk.flush) await tpm.run(FlushContext(srk.handle));
    }
  });


  test('FlushContext frees everything (persistent SRK): no objects or sessions left', async () => {
    expect((await tpm.srk()).flush).toBe(false);
    await leakRound();
  });
});

describe('a TPM in dictionary-attack lockout', () => {
  let sw: TestTpm;
  beforeAll(async () => {
    sw = await startToolsTpm();
  });
  afterAll(async () => {
    await sw?.stop();
  });

  const secret = randomBytes(32);
  let unbound: SealedBlob;
  let pcrBound: SealedBlob;

  let legacy: SealedBlob;

  test('a stranger drives the TPM into lockout: the wallet\'s blobs (noDA) still unseal, a DA-protected one sealed before is TPM_LOCKOUT, and lockout() reports the counter', async () => {
    let tpm = await sw.open();
    unbound = await tpm.seal(secret, []);
    pcrBound = await tpm.seal(secret, [16]);
    // A blob as swarmpay sealed them before they were noDA: DA-protected, unsealed with an empty password.
    const srk = await tpm.srk();
    const old = await tpm.run(Create(authorize(srk.handle, passwordSession()), { ...sealedTemplate(null), attributes: TPMA_OBJECT.fixedTPM | TPMA_OBJECT.fixedParent | TPMA_OBJECT.userWithAuth }, secret));
    if (srk.flush) await tpm.run(FlushContext(srk.handle));
    legacy = { public: old.outPublicBytes.toString('hex'), private: old.outPrivate.toString('hex'), pcrs: [] };
    expect(await tpm.lockout()).toMatchObject({ failedTries: 0 });
    await tpm.close(); // swtpm serves one connection at a time

    const t = (cmd: string, ...args: string[]) => tpm2(sw.tcti, sw.dir, cmd, ...args);
    await t('tpm2_dictionarylockout', '--setup-parameters', '--max-tries=2', '--recovery-time=600', '--lockout-recovery-time=1200');
    writeFileSync(path.join(sw.dir, 'victim.bin'), 'not for you');
    await t('tpm2_createprimary', '-C', 'o', '-c', 'prim.ctx');
    await t('tpm2_create', '-C', 'prim.ctx', '-p', 'right', '-i', 'victim.bin', '-u', 'victim.pub', '-r', 'victim.priv');
    await t('tpm2_load', '-C', 'prim.ctx', '-u', 'victim.pub', '-r', 'victim.priv', '-c', 'victim.ctx');
    expect(await t('tpm2_unseal', '-c', 'victim.ctx', '-p', 'right')).toBe('not for you');
    let rounds = 0;
    let last = '';
    while (!/0x921|lockout/i.test(last)) {
      if (++rounds > 10) throw new Error(`no lockout after 10 wrong passwords: ${last}`);
      const e = (await failure(t('tpm2_unseal', '-c', 'victim.ctx', '-p', 'wrong'))) as { stderr: string };
      last = e.stderr;
    }
    expect(rounds).toBeGreaterThanOrEqual(2);

    tpm = await sw.open();
    try {
      expect((await tpm.unseal(unbound)).equals(secret)).toBe(true);
      const e = await expectCode(tpm.unseal(legacy), 'TPM_LOCKOUT');
      expect(e.message).toMatch(/TPM_RC_LOCKOUT/);
      const lo = await tpm.lockout();
      expect(lo.maxTries).toBe(2);
      expect(lo.failedTries).toBeGreaterThanOrEqual(lo.maxTries);
      expect(lo.recoverySeconds).toBe(600);
      // Operations that use no DA-protected authorization still work.
      expect((await tpm.random(8)).length).toBe(8);
      const auth = randomBytes(32);
      const counter = await tpm.defineCounter(auth); // a NO_DA index
      await tpm.incrementCounter(counter, auth);
      expect(await handles(tpm, TRANSIENT)).toEqual([]);
    } finally {
      await tpm.close();
    }
  });

  test('a PCR-bound blob is not stopped by lockout either', async () => {
    const tpm = await sw.open();
    try {
      expect((await tpm.lockout()).failedTries).toBeGreaterThanOrEqual(2);
      expect((await tpm.unseal(pcrBound)).equals(secret)).toBe(true);
      await expectCode(tpm.unseal(legacy), 'TPM_LOCKOUT');
      expect(await handles(tpm, TRANSIENT)).toEqual([]);
    } finally {
      await tpm.close();
    }
  });
});

describe('a TPM whose object slots are full (another program leaked its objects)', () => {
  let sw: TestTpm;
  let tpm: Tpm;
  let blob: SealedBlob;
  const fillers: number[] = [];
  beforeAll(async () => {
    sw = await startTestTpm();
    tpm = await sw.open();
    blob = await tpm.seal(Buffer.from('x'), []);
  });
  afterAll(async () => {
    await tpm?.close();
    await sw?.stop();
  });
  const fill = async (n: number) => {
    while (fillers.length < n) fillers.push((await tpm.run(CreatePrimary(authorize(TPM_RH.OWNER, passwordSession()), SRK_TEMPLATE))).handle);
  };
  const free = async () => {
    for (const h of fillers.splice(0)) await tpm.run(FlushContext(h));
  };

  // Out of object memory is a passing condition, not a sign that the blob is another TPM's.
  test('a Load refused for lack of object memory is not reported as TPM_WRONG_TPM', async () => {
    await fill(2); // the transient SRK takes the third slot, Load finds none
    try {
      const e = await failure(tpm.unseal(blob));
      expect(e).toBeInstanceOf(SwarmpayError);
      expect((e as SwarmpayError).code).toBe('TPM_REFUSED');
    } finally {
      await free();
    }
  });

  // Every TPM error reaches the CLI as a SwarmpayError with a stable code, never INTERNAL.
  test('seal on a full TPM fails with a SwarmpayError', async () => {
    await fill(3);
    try {
      const e = await failure(tpm.seal(Buffer.from('x'), []));
      expect(e).toBeInstanceOf(SwarmpayError);
      expect((e as SwarmpayError).code).toBe('TPM_REFUSED');
    } finally {
      await free();
    }
  });

  test('with the slots free again, the blob unseals and nothing is left', async () => {
    expect((await tpm.unseal(blob)).toString()).toBe('x');
    expect(await handles(tpm, TRANSIENT)).toEqual([]);
  });
});

/** A loopback server that is not a TPM: answers every command with `answer` (or nothing). */
async function peer(answer: ((cmd: Buffer, sock: net.Socket, n: number) => void) | null): Promise<{ port: number; close(): Promise<void> }> {
  const socks = new Set<net.Socket>();
  let n = 0;
  const srv = net.createServer((sock) => {
    socks.add(sock);
    sock.on('close', () => socks.delete(sock));
    sock.on('error', () => undefined);
    sock.on('data', (d) => answer?.(d, sock, n++));
  });
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  return {
    port: (srv.address() as net.AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of socks) s.destroy();
        srv.close(() => resolve());
      }),
  };
}

const spec = (port: number) => ({ kind: 'swtpm' as const, host: '127.0.0.1', port });

describe('transports', () => {
  test('a TPM that is not listening is TPM_UNREACHABLE', async () => {
    const port = await freePort();
    const e = await expectCode(Tpm.open(spec(port)), 'TPM_UNREACHABLE');
    expect(e.message).toMatch(/ECONNREFUSED/);
  });

  const garbage: [string, Buffer][] = [
    ['an HTTP server', Buffer.from('HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n')],
    ['a size field of 2^31', Buffer.from('8001' + '80000000' + '00000000', 'hex')],
    ['a size field smaller than a header', Buffer.from('8001' + '00000004' + '00000000', 'hex')],
    ['a well-sized answer with a tag that is no TPM 2.0 tag', Buffer.from('dead' + '0000000a' + 'ffffffff', 'hex')],
    ['a TPM 1.2 answer', Buffer.from('00c4' + '0000000a' + '0000001e', 'hex')],
    ['a success whose parameters are truncated', Buffer.from('8001' + '0000000e' + '00000000' + '0010' + 'abcd', 'hex')],
    ['a success with trailing bytes', Buffer.from('8001' + '00000010' + '00000000' + '0002' + 'abcd' + 'ffff', 'hex')],
  ];
  test.each(garbage)('a peer that answers with %s is TPM_PROTOCOL, never a hang', async (_what, bytes) => {
    const p = await peer((_cmd, sock) => sock.write(bytes));
    try {
      const tpm = await Tpm.open(spec(p.port));
      try {
        await expectCode(tpm.random(2), 'TPM_PROTOCOL');
      } finally {
        await tpm.close();
      }
    } finally {
      await p.close();
    }
  }, 10_000);

  test('an answer split over several writes is put together', async () => {
    const answer = Buffer.from('8001' + '00000010' + '00000000' + '0004' + 'cafebabe', 'hex');
    const p = await peer((_cmd, sock) => {
      for (const b of answer) sock.write(Buffer.from([b]));
    });
    try {
      const tpm = await Tpm.open(spec(p.port));
      expect((await tpm.random(4)).toString('hex')).toBe('cafebabe');
      await tpm.close();
    } finally {
      await p.close();
    }
  });

  test('a peer that closes without answering is TPM_UNREACHABLE', async () => {
    const p = await peer((_cmd, sock) => sock.destroy());
    try {
      const tpm = await Tpm.open(spec(p.port));
      await expectCode(tpm.random(8), 'TPM_UNREACHABLE');
      await expectCode(tpm.random(8), 'TPM_UNREACHABLE');
      await tpm.close();
    } finally {
      await p.close();
    }
  }, 10_000);

  test('a peer that sends half an answer and falls silent times out (TIMEOUT)', async () => {
    const p = await peer((_cmd, sock) => sock.write(Buffer.from('8001' + '00000020' + '00000000' + '0010', 'hex')));
    try {
      const t = await SwtpmTransport.connect('127.0.0.1', p.port, 300);
      try {
        await expectCode(execute(t, GetRandom(16)), 'TIMEOUT');
      } finally {
        await t.close();
      }
    } finally {
      await p.close();
    }
  }, 10_000);

  test('a peer that never answers times out (TIMEOUT), and its late answer is never taken for the next command', async () => {
    const answer = (bytes: string) => Buffer.from('8001' + '00000010' + '00000000' + '0004' + bytes, 'hex');
    // The first command is answered 600 ms late, the second at once.
    const p = await peer((_cmd, sock, n) => {
      if (n === 0) setTimeout(() => sock.writable && sock.write(answer('11111111')), 600);
      else sock.write(answer('22222222'));
    });
    try {
      const t = await SwtpmTransport.connect('127.0.0.1', p.port, 200);
      try {
        await expectCode(execute(t, GetRandom(4)), 'TIMEOUT');
        await new Promise((r) => setTimeout(r, 800));
        // The connection was given up at the timeout: the stale answer 11111111 cannot be taken for this one's.
        await expectCode(execute(t, GetRandom(4)), 'TPM_UNREACHABLE');
      } finally {
        await t.close();
      }
    } finally {
      await p.close();
    }
  }, 10_000);
});
