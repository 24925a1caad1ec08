/**
 * A TPM identity with a chain of trust, on real software TPMs: the EK certificate swtpm_setup
 * puts in NV and its local CA; credential activation computed by us and by tpm2-tools, each
 * opened by the other's TPM client; enrollment over real peer links, where a forged AK, an
 * untrusted CA or an AK beside another TPM's EK certificate cannot get in; the trust store,
 * and quotes verified against it. Nothing is mocked.
 */
import { execFile } from 'node:child_process';
import { X509Certificate, createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { SwarmpayError } from '../src/errors.js';
import { encodeEscrowMessage, parseEscrowMessage } from '../src/escrow/messages.js';
import { generateStaticKey } from '../src/peer/keys.js';
import type { PeerLink } from '../src/peer/link.js';
import { connectTcp, listenTcp } from '../src/peer/transports.js';
import { attest, verifyEnrolledAttestation } from '../src/tpm/attestation.js';
import { ActivateCredential, CreatePrimary, FlushContext, LoadExternal, PolicySecret } from '../src/tpm/commands.js';
import { TPM_ALG, TPM_CC, TPM_RH, TPM_SE, TPMA_OBJECT } from '../src/tpm/constants.js';
import { makeCredential, parseTpm2ToolsCredentialFile, tpm2ToolsCredentialFile } from '../src/tpm/credential.js';
import { certSummary, ekPublicFromCertificate, parseCaBundle, parseEkCertificate, tpmOfCertificate, verifyEkChain } from '../src/tpm/ek-certificate.js';
import { answerEnrollment, checkAkPublic, enrollPeer } from '../src/tpm/enroll.js';
import { encodeEnrollMessage, isEnrollmentMessage, parseEnrollMessage, type EnrollMessage } from '../src/tpm/enroll-messages.js';
import { authorize, passwordSession } from '../src/tpm/execute.js';
import { EK_CERT_INDEX, activateCredential, ekTemplate, keyOfPublic, readEkCertificate, readNv, sameSpki, tpmIdentity } from '../src/tpm/identity.js';
import { Reader, Writer, marshalPublic, nameOfBytes, readPublic, type Public } from '../src/tpm/marshal.js';
import { flushSession, hmacSession, startSession } from '../src/tpm/sessions.js';
import { AK_TEMPLATE, EK_POLICY } from '../src/tpm/templates.js';
import type { Tpm } from '../src/tpm/tpm.js';
import { listIdentities, lookupIdentity, recordIdentity, removeIdentity, trustStorePath } from '../src/tpm/trust-store.js';
import { expectCode, thrown } from './helpers/expect.js';
import { startTestTpm, type TestTpm } from './helpers/swtpm.js';
import { tempDir } from './helpers/tmp.js';
import { requireTpm2Tools, tpm2 } from './helpers/tpm2-tools.js';

const exec = promisify(execFile);
const sha256 = (...parts: Uint8Array[]) => parts.reduce((h, p) => h.update(p), createHash('sha256')).digest();
const tpm2b = (b: Uint8Array) => Buffer.concat([new Writer().u16(b.length).done(), b]);
const LOCAL = '127.0.0.1';

/** A (with its own local CA), B (another swtpm, another CA), C (no EK certificate from swtpm). */
let a: TestTpm;
let b: TestTpm;
let c: TestTpm;
let tpmA: Tpm;
let tpmB: Tpm;
let tpmC: Tpm;
let caA: X509Certificate[];
let caB: X509Certificate[];
let tmp: ReturnType<typeof tempDir>;

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const f of cleanups.splice(0).reverse()) await f();
});

beforeAll(async () => {
  await requireTpm2Tools();
  [a, b, c] = await Promise.all([startTestTpm(), startTestTpm(), startTestTpm({ ekCert: false })]);
  [tpmA, tpmB, tpmC] = await Promise.all([a.open(), b.open(), c.open()]);
  caA = parseCaBundle(readFileSync(a.ekCa!, 'utf8'), a.ekCa!);
  caB = parseCaBundle(readFileSync(b.ekCa!, 'utf8'), b.ekCa!);
  tmp = tempDir('swarmpay-identity-');
});

afterAll(async () => {
  for (const t of [tpmA, tpmB, tpmC]) await t?.close();
  await Promise.all([a?.stop(), b?.stop(), c?.stop()]);
  tmp?.remove();
});

/** Our client lets go of swtpm's one connection before tpm2-tools take it. */
async function released<R>(tpm: Tpm, f: () => Promise<R>): Promise<R> {
  try {
    return await f();
  } finally {
    await tpm.close();
  }
}

/** A fresh network folder for a trust store. */
function storeDir(): string {
  const d = path.join(tmp.dir, randomBytes(6).toString('hex'), 'regtest');
  mkdirSync(d, { recursive: true });
  return d;
}

/** An attester on loopback: each frame goes to `answer` (answerEnrollment by default). */
async function attester(answer: (link: PeerLink, m: Buffer) => Promise<unknown>): Promise<number> {
  const key = generateStaticKey();
  const served = (link: PeerLink) => {
    cleanups.push(() => link.close());
    void (async () => {
      try {
        for await (const m of link.messages()) await answer(link, m);
      } catch {
        /* the verifier went away */
      }
    })();
  };
  const l = await listenTcp(LOCAL, 0, key, served);
  cleanups.push(() => l.close());
  return l.port;
}

async function verifierLink(port: number): Promise<PeerLink> {
  const link = await connectTcp(LOCAL, port, generateStaticKey());
  cleanups.push(() => link.close());
  return link;
}

/** A P-256 key of software, dressed as an AK: the attributes of a restricted TPM signing key, claimed. */
function forgedAk(): { pub: Public; area: Buffer; name: Buffer } {
  const jwk = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'jwk' });
  const pub: Public = { ...AK_TEMPLATE, parms: { ...(AK_TEMPLATE.parms as Extract<Public['parms'], { type: 0x23 }>), x: Buffer.from(jwk.x!, 'base64url'), y: Buffer.from(jwk.y!, 'base64url') } };
  const area = marshalPublic(pub);
  return { pub, area, name: nameOfBytes(pub.nameAlg, area) };
}

describe('the EK certificate', () => {
  test('swtpm_setup put an RSA 2048 EK certificate at 0x01c00002; tpm2-tools read the same bytes', async () => {
    const cert = await readEkCertificate(tpmA);
    expect(cert).toMatchObject({ kind: 'rsa-2048', index: EK_CERT_INDEX['rsa-2048'] });
    // Read in chunks smaller than TPM_PT_NV_BUFFER_MAX too: the same bytes.
    expect((await readNv(tpmA, cert.index, 100)).equals(await readNv(tpmA, cert.index))).toBe(true);
    const out = path.join(a.dir, 'ekcert.der');
    await released(tpmA, () => tpm2(a.tcti, a.dir, 'tpm2_nvread', '-C', 'o', '-o', out, '0x01c00002'));
    expect(readFileSync(out).subarray(0, cert.der.length).equals(cert.der)).toBe(true);
    const x = parseEkCertificate(cert.der);
    expect(x.issuer).toBe('CN=swtpm-localca');
    expect(x.keyUsage).toContain('2.23.133.8.1');
    // The TCG subjectAltName swtpm marks critical parses, and names the TPM.
    expect(tpmOfCertificate(x)).toEqual({ manufacturer: 'id:00001014', model: 'swtpm', version: expect.stringMatching(/^id:/) });
    // The persistent EKs swtpm_setup left were evicted: a fresh TPM's persistent handles are free.
    expect(await released(tpmA, () => tpm2(a.tcti, a.dir, 'tpm2_getcap', 'handles-persistent'))).not.toMatch(/0x8101/i);
  });

  test('the EK from the TCG template L-1 (policy PolicySecret(endorsement)) is the certified key, and the one tpm2_createek makes', async () => {
    // The template's authPolicy, computed: H(H(0³² ‖ TPM_CC_PolicySecret ‖ TPM_RH_ENDORSEMENT) ‖ policyRef ∅).
    expect(sha256(sha256(Buffer.alloc(32), new Writer().u32(TPM_CC.PolicySecret).u32(TPM_RH.ENDORSEMENT).done())).equals(EK_POLICY)).toBe(true);
    const id = await tpmIdentity(tpmA);
    expect(id.ekKind).toBe('rsa-2048');
    expect(sameSpki(parseEkCertificate(id.ekCert).publicKey, keyOfPublic(id.ekPublic))).toBe(true);
    expect(Buffer.from(id.ekPublic.authPolicy).equals(EK_POLICY)).toBe(true);
    const fromCert = ekPublicFromCertificate(parseEkCertificate(id.ekCert));
    expect(marshalPublic(fromCert.public).equals(marshalPublic(id.ekPublic))).toBe(true);
    const dir = path.join(a.dir, 'createek');
    mkdirSync(dir, { recursive: true });
    await released(tpmA, () => tpm2(a.tcti, dir, 'tpm2_createek', '-c', 'ek.ctx', '-G', 'rsa', '-u', 'ek.pub'));
    const theirs = new Reader(readFileSync(path.join(dir, 'ek.pub'))).sized(readPublic);
    expect(marshalPublic(theirs).equals(marshalPublic(id.ekPublic))).toBe(true);
    // The AK named in the identity is the one attestation uses.
    expect(id.akName.equals((await tpmA.akPublic()).name)).toBe(true);
  });

  test('chains to the local CA of its own swtpm: EK → swtpm-localca → swtpm-localca-rootca', async () => {
    const ek = parseEkCertificate((await readEkCertificate(tpmA)).der);
    const { chain, anchor } = verifyEkChain(ek, caA);
    expect(chain.map((x) => x.subject)).toEqual(['CN=unknown', 'CN=swtpm-localca', 'CN=swtpm-localca-rootca']);
    expect(anchor.subject).toBe('CN=swtpm-localca-rootca');
    expect(certSummary(anchor).fingerprint).toMatch(/^[0-9a-f]{64}$/);
  });

  test("another swtpm's CA is refused, though its CAs bear the same names; so are a partial bundle, a CA as EK, dates outside validity", async () => {
    const ekA = parseEkCertificate((await readEkCertificate(tpmA)).der);
    const ekB = parseEkCertificate((await readEkCertificate(tpmB)).der);
    expect(ekB.issuer).toBe(ekA.issuer);
    const e1 = thrown(() => verifyEkChain(ekA, caB));
    expect(e1.code).toBe('ATTESTATION_INVALID');
    expect(e1.message).toMatch(/issued by "CN=swtpm-localca", but not by the trusted certificate of that name/);
    expect(verifyEkChain(ekB, caB).anchor.raw.equals(caB[1]!.raw)).toBe(true);
    // The issuing CA alone, without its root: the chain ends short of a trusted root.
    const e2 = thrown(() => verifyEkChain(ekA, [caA[0]!]));
    expect(e2.message).toMatch(/CA certificate "CN=swtpm-localca" is issued by "CN=swtpm-localca-rootca", which is none of the trusted/);
    expect(thrown(() => verifyEkChain(caA[0]!, caA)).message).toMatch(/is a CA certificate, not an EK certificate/);
    expect(thrown(() => verifyEkChain(ekA, caA, new Date('2000-01-01'))).message).toMatch(/not valid before/);
    expect(thrown(() => verifyEkChain(ekA, caA, new Date('+010000-01-02T00:00:00Z'))).message).toMatch(/expired/);
    // Both CAs trusted: each EK chains to its own.
    expect(verifyEkChain(ekA, [...caB, ...caA]).anchor.raw.equals(caA[1]!.raw)).toBe(true);
    expect(thrown(() => parseCaBundle('not a certificate', 'x.pem')).code).toBe('INVALID_FILE');
  });

  test('a TPM without an EK certificate says so', async () => {
    const e = await expectCode(readEkCertificate(tpmC), 'TPM_UNAVAILABLE');
    expect(e.message).toMatch(/no EK certificate \(NV 0x01c0000a, 0x01c00002 undefined\)/);
  });
});

describe('credential activation', () => {
  test('our MakeCredential, opened by the TPM holding the EK with the AK loaded beside it', async () => {
    const id = await tpmIdentity(tpmA);
    for (let i = 0; i < 3; i++) {
      const secret = randomBytes(32);
      const cred = makeCredential(id.ekPublic, id.akName, secret);
      expect((await activateCredential(tpmA, 'rsa-2048', cred.credentialBlob, cred.encryptedSecret)).equals(secret)).toBe(true);
    }
    // Deterministic given the seed: the blob is a function of seed, name and secret only.
    const seed = randomBytes(32);
    const secret = randomBytes(32);
    expect(makeCredential(id.ekPublic, id.akName, secret, { seed }).credentialBlob.equals(makeCredential(id.ekPublic, id.akName, secret, { seed }).credentialBlob)).toBe(true);
  });

  test('with an ECC P-256 EK (template L-2): the seed by ECDH and KDFe', async () => {
    const ek = await tpmA.run(CreatePrimary(authorize(TPM_RH.ENDORSEMENT, passwordSession()), ekTemplate('ecc-p256')));
    await tpmA.run(FlushContext(ek.handle));
    const ak = await tpmA.akPublic();
    const secret = randomBytes(32);
    const cred = makeCredential(ek.outPublic, ak.name, secret);
    expect((await activateCredential(tpmA, 'ecc-p256', cred.credentialBlob, cred.encryptedSecret)).equals(secret)).toBe(true);
    // The RSA EK of the same TPM cannot open what was made for the ECC one.
    await expectCode(activateCredential(tpmA, 'rsa-2048', cred.credentialBlob, cred.encryptedSecret), 'TPM_REFUSED');
  });

  test('bound to another name, or made for another TPM\'s EK, the credential does not open', async () => {
    const id = await tpmIdentity(tpmA);
    const other = Buffer.from(id.akName);
    other[10]! ^= 1;
    const forName = makeCredential(id.ekPublic, other, randomBytes(32));
    const e = await expectCode(activateCredential(tpmA, 'rsa-2048', forName.credentialBlob, forName.encryptedSecret), 'TPM_REFUSED');
    expect(e.message).toMatch(/TPM_RC_INTEGRITY/);
    const idB = await tpmIdentity(tpmB);
    const forB = makeCredential(idB.ekPublic, id.akName, randomBytes(32));
    await expectCode(activateCredential(tpmA, 'rsa-2048', forB.credentialBlob, forB.encryptedSecret), 'TPM_REFUSED');
  });

  test('tpm2_makecredential (no TPM, TCTI none) makes a credential our ActivateCredential opens', async () => {
    const id = await tpmIdentity(tpmA);
    const dir = path.join(a.dir, 'mkcred');
    mkdirSync(dir, { recursive: true });
    const secret = randomBytes(32);
    writeFileSync(path.join(dir, 'ek.pub'), tpm2b(marshalPublic(id.ekPublic)));
    writeFileSync(path.join(dir, 'secret'), secret);
    await exec('tpm2_makecredential', ['-T', 'none', '-u', 'ek.pub', '-s', 'secret', '-n', id.akName.toString('hex'), '-o', 'cred.out'], { cwd: dir });
    const theirs = parseTpm2ToolsCredentialFile(readFileSync(path.join(dir, 'cred.out')));
    expect((await activateCredential(tpmA, 'rsa-2048', theirs.credentialBlob, theirs.encryptedSecret)).equals(secret)).toBe(true);
  });

  test('our MakeCredential, opened by tpm2_activatecredential for tpm2-tools\' own EK and AK (tpm2_createek, tpm2_createak)', async () => {
    const dir = path.join(a.dir, 'actcred');
    mkdirSync(dir, { recursive: true });
    const tool = (cmd: string, ...args: string[]) => tpm2(a.tcti, dir, cmd, ...args);
    await released(tpmA, async () => {
      await tool('tpm2_createek', '-c', 'ek.ctx', '-G', 'rsa', '-u', 'ek.pub');
      await tool('tpm2_createak', '-C', 'ek.ctx', '-c', 'ak.ctx', '-G', 'ecc', '-g', 'sha256', '-s', 'ecdsa', '-u', 'ak.pub', '-n', 'ak.name');
    });
    const ekPub = new Reader(readFileSync(path.join(dir, 'ek.pub'))).sized(readPublic);
    const akName = readFileSync(path.join(dir, 'ak.name'));
    const secret = randomBytes(32);
    writeFileSync(path.join(dir, 'cred.out'), tpm2ToolsCredentialFile(makeCredential(ekPub, akName, secret)));
    await released(tpmA, async () => {
      await tool('tpm2_startauthsession', '--policy-session', '-S', 'session.ctx');
      await tool('tpm2_policysecret', '-S', 'session.ctx', '-c', 'e');
      await tool('tpm2_activatecredential', '-c', 'ak.ctx', '-C', 'ek.ctx', '-i', 'cred.out', '-o', 'secret.out', '-P', 'session:session.ctx');
      await tool('tpm2_flushcontext', 'session.ctx');
    });
    expect(readFileSync(path.join(dir, 'secret.out')).equals(secret)).toBe(true);
  });

  test('a software key claiming the AK\'s attributes cannot be used to activate: loaded as a public key, the TPM has no authorization for it', async () => {
    const forged = forgedAk();
    const id = await tpmIdentity(tpmA);
    const secret = randomBytes(32);
    const cred = makeCredential(id.ekPublic, forged.name, secret);
    // With the TPM's own AK the name does not match.
    await expectCode(activateCredential(tpmA, 'rsa-2048', cred.credentialBlob, cred.encryptedSecret), 'TPM_REFUSED');
    // Loaded by LoadExternal its name does, but nothing can be authorized for a public-only object.
    const run = tpmA.run.bind(tpmA);
    await tpmA.use(async () => {
      const ext = await run(LoadExternal(forged.pub, TPM_RH.OWNER));
      expect(ext.name.equals(forged.name)).toBe(true);
      const ek = await run(CreatePrimary(authorize(TPM_RH.ENDORSEMENT, passwordSession()), ekTemplate('rsa-2048')));
      const s = await startSession(run, TPM_SE.POLICY, { symmetric: null });
      try {
        await run(PolicySecret(authorize(TPM_RH.ENDORSEMENT, passwordSession()), s.handle));
        const e = await expectCode(run(ActivateCredential(authorize(ext, passwordSession()), authorize(ek, hmacSession(s)), cred.credentialBlob, cred.encryptedSecret)), 'TPM_REFUSED');
        expect(e.message).toMatch(/TPM_RC_AUTH_UNAVAILABLE/);
      } finally {
        await flushSession(run, s).catch(() => undefined);
        await run(FlushContext(ek.handle));
        await run(FlushContext(ext.handle));
      }
    });
  });
});

describe('the AK a verifier accepts', () => {
  test('a restricted signing key of the TPM, named by SHA-256 over the bytes sent', async () => {
    const id = await tpmIdentity(tpmA);
    expect(checkAkPublic(tpm2b(id.akPublic), id.akName).area.equals(id.akPublic)).toBe(true);
    const pub = new Reader(id.akPublic).sizedAll(readPublic);
    const variant = (p: Public) => {
      const area = marshalPublic(p);
      return thrown(() => checkAkPublic(tpm2b(area), nameOfBytes(TPM_ALG.SHA256, area))).message;
    };
    expect(variant({ ...pub, attributes: pub.attributes & ~TPMA_OBJECT.restricted })).toMatch(/lack restricted/);
    expect(variant({ ...pub, attributes: pub.attributes & ~TPMA_OBJECT.fixedTPM })).toMatch(/lack fixedTPM/);
    expect(variant({ ...pub, attributes: pub.attributes | TPMA_OBJECT.decrypt })).toMatch(/also a decryption key/);
    const other = Buffer.from(id.akName);
    other[33]! ^= 1;
    expect(thrown(() => checkAkPublic(tpm2b(id.akPublic), other)).message).toMatch(/is not the name of its public area/);
    expect(thrown(() => checkAkPublic(Buffer.concat([tpm2b(id.akPublic), Buffer.from([0])]), id.akName)).message).toMatch(/does not parse/);
  });
});

describe('enrollment over the peer link', () => {
  const honest = (tpm: Tpm | null) => (link: PeerLink, m: Buffer) => answerEnrollment(tpm, link, m);

  test('the verifier checks the chain, challenges the TPM and records the AK; enrolling again replaces it', async () => {
    const dir = storeDir();
    const port = await attester(honest(tpmA));
    const link = await verifierLink(port);
    const r = await enrollPeer(link, caA, { networkDir: dir, label: 'seller A' });
    const ak = await tpmA.akPublic();
    expect(r.replaced).toBe(false);
    expect(r.identity).toMatchObject({ akName: ak.name.toString('hex'), label: 'seller A', ek: { kind: 'rsa-2048', issuer: 'CN=swtpm-localca', tpm: { model: 'swtpm' } }, ca: { subject: 'CN=swtpm-localca-rootca' } });
    expect(r.identity.peerKey).toMatch(/^[0-9a-f]{64}$/);
    expect(listIdentities(dir)).toEqual([r.identity]);
    expect(lookupIdentity(dir, `0x${ak.name.toString('hex').toUpperCase()}`)).toEqual(r.identity);
    expect(statSync(trustStorePath(dir)).mode & 0o777).toBe(0o600);
    // The same link serves a second enrollment; the record is replaced, not doubled.
    const again = await enrollPeer(link, caA, { networkDir: dir, label: 'seller A, again' });
    expect(again.replaced).toBe(true);
    expect(listIdentities(dir).map((i) => i.label)).toEqual(['seller A, again']);
  });

  test("a peer certified by a CA the verifier does not trust is refused before any challenge; nothing is recorded", async () => {
    const dir = storeDir();
    const seen: string[] = [];
    const port = await attester(async (link, m) => {
      seen.push(parseEnrollMessage(m).t);
      await answerEnrollment(tpmB, link, m);
    });
    const e = await expectCode(enrollPeer(await verifierLink(port), caA, { networkDir: dir }), 'ATTESTATION_INVALID');
    expect(e.message).toMatch(/EK certificate is issued by "CN=swtpm-localca", but not by the trusted certificate/);
    expect(seen).toEqual(['enroll?']);
    expect(listIdentities(dir)).toEqual([]);
  });

  test('a forged AK (a software key claiming the attributes) next to a real EK certificate: the secret cannot be recovered', async () => {
    const dir = storeDir();
    const forged = forgedAk();
    const attempts: string[] = [];
    const port = await attester(async (link, frame) => {
      const m = parseEnrollMessage(frame);
      if (m.t === 'enroll?') {
        const id = await tpmIdentity(tpmA);
        link.send(encodeEnrollMessage({ t: 'enroll-identity', ekKind: id.ekKind, ekCert: id.ekCert, akPublic: tpm2b(forged.area), akName: forged.name }));
      } else if (m.t === 'enroll-challenge') {
        // The best the forger can do with the TPM it has: its real AK, which has another name.
        const e = await expectCode(activateCredential(tpmA, m.ekKind, m.credentialBlob, m.encryptedSecret), 'TPM_REFUSED');
        attempts.push(e.message);
        link.send(encodeEnrollMessage({ t: 'enroll-proof', secret: randomBytes(32) }));
      }
    });
    const e = await expectCode(enrollPeer(await verifierLink(port), caA, { networkDir: dir }), 'ATTESTATION_INVALID');
    expect(e.message).toMatch(/did not recover the credential's secret/);
    expect(attempts).toEqual([expect.stringMatching(/TPM_RC_INTEGRITY/)]);
    expect(listIdentities(dir)).toEqual([]);
  });

  test("one TPM's AK beside another TPM's EK certificate (both CAs trusted): neither TPM can open the challenge", async () => {
    const dir = storeDir();
    const refusals: string[] = [];
    const port = await attester(async (link, frame) => {
      const m = parseEnrollMessage(frame);
      if (m.t === 'enroll?') {
        const [idA, idB] = [await tpmIdentity(tpmA), await tpmIdentity(tpmB)];
        link.send(encodeEnrollMessage({ t: 'enroll-identity', ekKind: idB.ekKind, ekCert: idB.ekCert, akPublic: tpm2b(idA.akPublic), akName: idA.akName }));
      } else if (m.t === 'enroll-challenge') {
        for (const t of [tpmA, tpmB]) refusals.push((await expectCode(activateCredential(t, m.ekKind, m.credentialBlob, m.encryptedSecret), 'TPM_REFUSED')).message);
        // Passing the refusal on, as answerEnrollment would.
        link.send(encodeEnrollMessage({ t: 'error', code: 'TPM_REFUSED', message: refusals[0]! }));
      }
    });
    const e = await expectCode(enrollPeer(await verifierLink(port), [...caA, ...caB], { networkDir: dir }), 'ATTESTATION_INVALID');
    expect(e.message).toMatch(/the peer refused enrollment: TPM_REFUSED/);
    expect(e.details).toEqual({ peerCode: 'TPM_REFUSED' });
    expect(refusals).toHaveLength(2);
    expect(listIdentities(dir)).toEqual([]);
  });

  test('an attester without a TPM, or whose TPM has no EK certificate, refuses; a malformed request is refused, not fatal', async () => {
    const dir = storeDir();
    for (const tpm of [null, tpmC]) {
      const e = await expectCode(enrollPeer(await verifierLink(await attester(honest(tpm))), caA, { networkDir: dir }), 'ATTESTATION_INVALID');
      expect(e.details).toEqual({ peerCode: 'TPM_UNAVAILABLE' });
    }
    const answered: unknown[] = [];
    const port = await attester(async (link, m) => answered.push(await answerEnrollment(tpmA, link, m)));
    const link = await verifierLink(port);
    const it = link.messages()[Symbol.asyncIterator]();
    link.send(Buffer.from(JSON.stringify({ v: 1, t: 'enroll-challenge', ekKind: 'rsa-2048', credentialBlob: 'zz', encryptedSecret: '00' })));
    const reply = parseEnrollMessage((await it.next()).value as Buffer);
    expect(reply).toMatchObject({ t: 'error', code: 'PEER_PROTOCOL' });
    expect(answered).toEqual([{ request: 'enroll?', refused: expect.any(SwarmpayError) }]);
    // The link is still served.
    expect((await enrollPeer(link, caA, { networkDir: dir, record: false })).identity.akName).toBe((await tpmA.akPublic()).name.toString('hex'));
    expect(listIdentities(dir)).toEqual([]);
  });

  test('a server that does not know enrollment (an escrow server) answers with its error: PEER_PROTOCOL', async () => {
    const port = await attester(async (link, m) => {
      try {
        parseEscrowMessage(m);
      } catch (e) {
        link.send(encodeEscrowMessage({ t: 'error', code: (e as SwarmpayError).code, message: (e as Error).message }));
      }
    });
    const e = await expectCode(enrollPeer(await verifierLink(port), caA, { networkDir: storeDir() }), 'PEER_PROTOCOL');
    expect(e.message).toMatch(/does not answer TPM enrollment/);
  });

  test('the messages: enrollment frames are told from escrow frames; malformed or other versions are PEER_PROTOCOL', () => {
    expect(isEnrollmentMessage(encodeEnrollMessage({ t: 'enroll?' }))).toBe(true);
    expect(isEnrollmentMessage(encodeEscrowMessage({ t: 'get', id: null, nonce: randomBytes(32) }))).toBe(false);
    expect(isEnrollmentMessage(Buffer.from('not json'))).toBe(false);
    const m: EnrollMessage = { t: 'enroll-challenge', ekKind: 'ecc-p256', credentialBlob: randomBytes(50), encryptedSecret: randomBytes(68) };
    expect(parseEnrollMessage(encodeEnrollMessage(m))).toEqual(m);
    const bad = (o: object) => thrown(() => parseEnrollMessage(Buffer.from(JSON.stringify(o)))).code;
    expect(bad({ v: 2, t: 'enroll?' })).toBe('PEER_PROTOCOL');
    expect(bad({ v: 1, t: 'enroll-proof', secret: 'ab'.repeat(65) })).toBe('PEER_PROTOCOL');
    expect(bad({ v: 1, t: 'enroll-identity', ekKind: 'rsa-3072', ekCert: 'AA==', akPublic: '00000000', akName: '000b00' })).toBe('PEER_PROTOCOL');
    expect(bad({ v: 1, t: 'enroll-identity', ekKind: 'rsa-2048', ekCert: '!!', akPublic: '00000000', akName: '000b00' })).toBe('PEER_PROTOCOL');
  });
});

describe('the trust store and quotes verified against it', () => {
  test('list, lookup, remove; a quote by an enrolled AK says which identity vouches, others are refused', async () => {
    const dir = storeDir();
    const r = await enrollPeer(await verifierLink(await attester((link, m) => answerEnrollment(tpmA, link, m))), caA, { networkDir: dir, label: 'A' });
    const nonce = randomBytes(32);
    const docA = await attest(tpmA, nonce, [0, 7]);
    const v = verifyEnrolledAttestation(docA, { nonce, enrolled: listIdentities(dir) });
    expect(v).toMatchObject({ akName: r.identity.akName, akPinned: true, vouchedBy: { akName: r.identity.akName, label: 'A', ca: { subject: 'CN=swtpm-localca-rootca' } } });
    // B's quote is valid, but its AK is not enrolled.
    const docB = await attest(tpmB, nonce, [0, 7]);
    expect(thrown(() => verifyEnrolledAttestation(docB, { nonce, enrolled: listIdentities(dir) })).message).toMatch(/is not enrolled/);
    // A document naming the enrolled AK but carrying another key is refused.
    const swapped = { ...docB, akName: docA.akName };
    expect(thrown(() => verifyEnrolledAttestation(swapped, { nonce, enrolled: listIdentities(dir) })).code).toBe('ATTESTATION_INVALID');
    // Other checks still apply: a wrong nonce.
    expect(thrown(() => verifyEnrolledAttestation(docA, { nonce: randomBytes(32), enrolled: listIdentities(dir) })).message).toMatch(/another nonce/);

    expect(recordIdentity(dir, { ...r.identity, akName: '000b' + '11'.repeat(32), label: 'other' })).toEqual({ replaced: false });
    expect(listIdentities(dir).map((i) => i.label)).toEqual(['A', 'other']);
    expect(removeIdentity(dir, r.identity.akName).label).toBe('A');
    expect(listIdentities(dir).map((i) => i.label)).toEqual(['other']);
    expect(thrown(() => removeIdentity(dir, r.identity.akName)).code).toBe('USAGE');
    expect(thrown(() => removeIdentity(dir, 'not hex')).code).toBe('USAGE');
    expect(thrown(() => verifyEnrolledAttestation(docA, { nonce, enrolled: listIdentities(dir) })).message).toMatch(/is not enrolled/);
    // A damaged store is said to be, not read as empty.
    writeFileSync(trustStorePath(dir), '{"format":"swarmpay-tpm-trust","version":1,"identities":[{}]}');
    expect(thrown(() => listIdentities(dir)).code).toBe('INVALID_FILE');
  });
});

describe('an ECC P-256 EK certificate (which swtpm 0.7 does not make): preferred where it exists', () => {
  test('certified by a CA of our own at NV 0x01c0000a, the EK is ECC and enrollment activates through ECDH', async () => {
    const dir = path.join(c.dir, 'ecc');
    mkdirSync(dir, { recursive: true });
    const ek = await tpmC.run(CreatePrimary(authorize(TPM_RH.ENDORSEMENT, passwordSession()), ekTemplate('ecc-p256')));
    await tpmC.run(FlushContext(ek.handle));
    writeFileSync(path.join(dir, 'ek.pem'), keyOfPublic(ek.outPublic).export({ type: 'spki', format: 'pem' }));
    writeFileSync(path.join(dir, 'ext.cnf'), 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,keyAgreement\nextendedKeyUsage=2.23.133.8.1\n');
    const openssl = (...args: string[]) => exec('openssl', args, { cwd: dir });
    await openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-subj', '/CN=test EK root', '-days', '2',
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
    await openssl('req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'csr.key', '-subj', '/CN=ecc ek', '-out', 'ek.csr');
    await openssl('x509', '-req', '-in', 'ek.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-force_pubkey', 'ek.pem', '-days', '1', '-extfile', 'ext.cnf', '-outform', 'DER', '-out', 'ek.der');
    const der = readFileSync(path.join(dir, 'ek.der'));
    const index = `0x${EK_CERT_INDEX['ecc-p256'].toString(16).padStart(8, '0')}`;
    const tool = (cmd: string, ...args: string[]) => tpm2(c.tcti, dir, cmd, ...args);
    await released(tpmC, async () => {
      // Padded beyond the DER, as some vendors' indices are: the certificate is trimmed to its length.
      await tool('tpm2_nvdefine', index, '-C', 'o', '-s', String(der.length + 16), '-a', 'ownerread|ownerwrite|authread|no_da');
      writeFileSync(path.join(dir, 'padded.der'), Buffer.concat([der, Buffer.alloc(16)]));
      await tool('tpm2_nvwrite', index, '-C', 'o', '-i', 'padded.der');
    });
    try {
      expect(await readEkCertificate(tpmC)).toEqual({ kind: 'ecc-p256', index: EK_CERT_INDEX['ecc-p256'], der });
      const ca = parseCaBundle(readFileSync(path.join(dir, 'ca.pem'), 'utf8'), 'ca.pem');
      const store = storeDir();
      const r = await enrollPeer(await verifierLink(await attester((link, m) => answerEnrollment(tpmC, link, m))), ca, { networkDir: store, label: 'ecc' });
      expect(r.identity).toMatchObject({ akName: (await tpmC.akPublic()).name.toString('hex'), ek: { kind: 'ecc-p256', subject: 'CN=ecc ek', issuer: 'CN=test EK root', tpm: null }, ca: { subject: 'CN=test EK root' } });
      // A's CA does not vouch for it.
      await expectCode(enrollPeer(await verifierLink(await attester((link, m) => answerEnrollment(tpmC, link, m))), caA, { networkDir: store }), 'ATTESTATION_INVALID');
    } finally {
      await released(tpmC, () => tool('tpm2_nvundefine', index, '-C', 'o'));
    }
  });
});
