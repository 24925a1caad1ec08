/**
 * Cross-checks with tpm2-tools, an independent TPM software stack, on the same swtpm:
 * objects sealed by one are unsealed by the other, the PCR policy digest, counters and
 * PCR values agree, and tpm2-tools' TPM2B files are our marshalled structures.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { GetCapability, PCR_Extend } from '../src/tpm/commands.js';
import { TPM_ALG, TPM_CAP, TPMA_OBJECT } from '../src/tpm/constants.js';
import { authorize, passwordSession } from '../src/tpm/execute.js';
import { Reader, readPublic } from '../src/tpm/marshal.js';
import { SRK_PERSISTENT_HANDLE } from '../src/tpm/templates.js';
import type { SealedBlob, Tpm } from '../src/tpm/tpm.js';
import { tpm2 } from './helpers/tpm2-tools.js';
import { startTestTpm, type TestTpm } from './helpers/swtpm.js';


let sw: TestTpm;
/** Blobs tpm2-tools sealed, for the leak check at the end. */
const theirBlobs: { blob: SealedBlob; secret: Buffer }[] = [];

const file = (name: string) => path.join(sw.dir, name);

const tool = (cmd: string, ...args: string[]) => tpm2(sw.tcti, sw.dir, cmd, ...args);

/** Our client on its own connection: swtpm serves one connection at a time, so it is closed before tpm2-tools run. */
async function ours<R>(f: (tpm: Tpm) => Promise<R>): Promise<R> {
  const tpm = await sw.open();
  try {
    return await f(tpm);
  } finally {
    await tpm.close();
  }
}

/** tpm2-tools' -u / -r files: the marshalled TPM2B_PUBLIC / TPM2B_PRIVATE, u16 size prefix included. */
const tpm2b = (hex: string) => {
  const b = Buffer.from(hex, 'hex');
  const size = Buffer.alloc(2);
  size.writeUInt16BE(b.length);
  return Buffer.concat([size, b]);
};
const unTpm2b = (b: Buffer): string => {
  expect(b.readUInt16BE(0)).toBe(b.length - 2);
  return b.subarray(2).toString('hex');
};

beforeAll(async () => {
  sw = await startTestTpm();
  // tpm2-tools' swtpm TCTI takes the control channel to be the data port + 1.
  expect(sw.state.ctrlPort).toBe(sw.state.port + 1);
  // A known, non-zero PCR 16, and the SRK where tpm2-tools can name it.
  await ours(async (tpm) => {
    await tpm.run(PCR_Extend(authorize(16, passwordSession()), TPM_ALG.SHA256, randomBytes(32)));
    expect((await tpm.persistSrk()).persisted).toBe(true);
  });
});

afterAll(async () => {
  await sw?.stop();
});

test('tpm2-tools reach the same swtpm and see our persistent SRK', async () => {
  const out = await tool('tpm2_getcap', 'handles-persistent');
  expect(out).toMatch(/0x81000001/i);
  expect(await tool('tpm2_getcap', 'properties-fixed')).toMatch(/TPM2_PT_MANUFACTURER:\s*raw: 0x49424D00\s*value: "IBM"/i);
});

test('an object our client seals is loaded and unsealed by tpm2-tools', async () => {
  const secret = Buffer.from(`sealed by swarmpay ${randomBytes(8).toString('hex')}`);
  const sealed = await ours((tpm) => tpm.seal(secret, []));
  writeFileSync(file('ours.pub'), tpm2b(sealed.public));
  writeFileSync(file('ours.priv'), tpm2b(sealed.private));
  await tool('tpm2_load', '-C', `0x${SRK_PERSISTENT_HANDLE.toString(16)}`, '-u', 'ours.pub', '-r', 'ours.priv', '-c', 'ours.ctx');
  await tool('tpm2_unseal', '-c', 'ours.ctx', '-o', 'ours.out');
  expect(readFileSync(file('ours.out')).equals(secret)).toBe(true);
  expect(await tool('tpm2_unseal', '-c', 'ours.ctx')).toBe(secret.toString());
});

test('a PCR-bound object our client seals is unsealed by tpm2-tools with a PolicyPCR session', async () => {
  const secret = randomBytes(32);
  const sealed = await ours((tpm) => tpm.seal(secret, [16]));
  writeFileSync(file('ourspcr.pub'), tpm2b(sealed.public));
  writeFileSync(file('ourspcr.priv'), tpm2b(sealed.private));
  await tool('tpm2_load', '-C', '0x81000001', '-u', 'ourspcr.pub', '-r', 'ourspcr.priv', '-c', 'ourspcr.ctx');
  // Without the policy: TPM_RC_AUTH_UNAVAILABLE, as our client sees it too (userWithAuth is clear).
  await expect(tool('tpm2_unseal', '-c', 'ourspcr.ctx', '-o', 'x.out')).rejects.toThrow(/0x12F/);
  await tool('tpm2_unseal', '-c', 'ourspcr.ctx', '-p', 'pcr:sha256:16', '-o', 'ourspcr.out');
  expect(readFileSync(file('ourspcr.out')).equals(secret)).toBe(true);
});

test('an object tpm2-tools seal (default attributes) is unsealed by our client', async () => {
  const secret = Buffer.from(`sealed by tpm2-tools ${randomBytes(8).toString('hex')}`);
  writeFileSync(file('theirs.in'), secret);
  await tool('tpm2_create', '-C', '0x81000001', '-i', 'theirs.in', '-u', 'theirs.pub', '-r', 'theirs.priv');
  // The files are TPM2Bs: their u16 size prefix counts the rest.
  const blob: SealedBlob = { public: unTpm2b(readFileSync(file('theirs.pub'))), private: unTpm2b(readFileSync(file('theirs.priv'))), pcrs: [] };
  const pub = new Reader(Buffer.from(blob.public, 'hex')).sizedAll(readPublic);
  expect(pub.parms.type).toBe(TPM_ALG.KEYEDHASH);
  expect(pub.nameAlg).toBe(TPM_ALG.SHA256);
  expect(pub.attributes).toBe(TPMA_OBJECT.fixedTPM | TPMA_OBJECT.fixedParent | TPMA_OBJECT.userWithAuth);
  expect((await ours((tpm) => tpm.unseal(blob))).equals(secret)).toBe(true);
  theirBlobs.push({ blob, secret });
});

test('an object tpm2-tools seal under a tpm2_createpolicy PCR policy is unsealed by our client with pcrs [16]', async () => {
  const secret = randomBytes(48);
  writeFileSync(file('theirspcr.in'), secret);
  await tool('tpm2_createpolicy', '--policy-pcr', '-l', 'sha256:16', '-L', 'theirspcr.policy');
  await tool('tpm2_create', '-C', '0x81000001', '-i', 'theirspcr.in', '-L', 'theirspcr.policy', '-u', 'theirspcr.pub', '-r', 'theirspcr.priv');
  const blob: SealedBlob = { public: unTpm2b(readFileSync(file('theirspcr.pub'))), private: unTpm2b(readFileSync(file('theirspcr.priv'))), pcrs: [16] };
  const pub = new Reader(Buffer.from(blob.public, 'hex')).sizedAll(readPublic);
  expect(Buffer.from(pub.authPolicy).equals(readFileSync(file('theirspcr.policy')))).toBe(true);
  expect((await ours((tpm) => tpm.unseal(blob))).equals(secret)).toBe(true);
  theirBlobs.push({ blob, secret });
});

test('the PCR policy digest of our trial session equals tpm2_createpolicy --policy-pcr', async () => {
  for (const [pcrs, list] of [
    [[16], 'sha256:16'],
    [[0, 16], 'sha256:0,16'],
    [[0, 1, 2, 7, 8, 15, 16, 23], 'sha256:0,1,2,7,8,15,16,23'], // tpm2_createpolicy takes at most 8
  ] as const) {
    const digest = await ours((tpm) => tpm.pcrPolicyDigest([...pcrs]));
    await tool('tpm2_createpolicy', '--policy-pcr', '-l', list, '-L', 'policy.bin');
    expect(digest.toString('hex')).toBe(readFileSync(file('policy.bin')).toString('hex'));
  }
});

test('a counter our client defines reads the same with tpm2_nvread; tpm2_nvincrement moves it with its auth, and is refused without', async () => {
  const auth = randomBytes(32);
  const index = await ours(async (tpm) => {
    const i = await tpm.defineCounter(auth);
    await tpm.incrementCounter(i, auth);
    await tpm.incrementCounter(i, auth);
    return i;
  });
  const hex = `0x${index.toString(16)}`;
  const value = await ours((tpm) => tpm.readCounter(index, auth, undefined));
  await tool('tpm2_nvread', '-C', hex, '-P', `hex:${auth.toString('hex')}`, '-s', '8', '-o', 'counter.bin', hex);
  expect(readFileSync(file('counter.bin')).readBigUInt64BE()).toBe(value);
  // With the owner's authorization too (OWNERREAD): what our peekCounter uses.
  await tool('tpm2_nvread', '-C', 'o', '-s', '8', '-o', 'counter-owner.bin', hex);
  expect(readFileSync(file('counter-owner.bin')).readBigUInt64BE()).toBe(value);
  await expect(tool('tpm2_nvincrement', '-C', hex, hex)).rejects.toMatchObject({ stderr: expect.stringMatching(/0x0*9a2/i) });
  expect(await ours((tpm) => tpm.readCounter(index, auth, undefined))).toBe(value);
  await tool('tpm2_nvincrement', '-C', hex, '-P', `hex:${auth.toString('hex')}`, hex);
  expect(await ours((tpm) => tpm.readCounter(index, auth, undefined))).toBe(value + 1n);
  // TPM_NT_COUNTER | AUTHWRITE | OWNERREAD | AUTHREAD | NO_DA | WRITTEN, as tpm2-tools decode it.
  const pub = await tool('tpm2_nvreadpublic', hex);
  expect(pub).toMatch(/friendly: authwrite\|nt=0x1\|ownerread\|authread\|no_da\|written/);
  expect(pub).toMatch(/value: 0x22060014/);
  expect(pub).toMatch(/size: 8/);
});

test('PCR values from our pcrRead equal tpm2_pcrread -o', async () => {
  const values = await ours((tpm) => tpm.pcrRead([0, 16]));
  await tool('tpm2_pcrread', 'sha256:0,16', '-o', 'pcrs.bin');
  const theirs = readFileSync(file('pcrs.bin'));
  expect(theirs.length).toBe(64);
  expect(theirs.subarray(0, 32).toString('hex')).toBe(values.get(0)!.toString('hex'));
  expect(theirs.subarray(32).toString('hex')).toBe(values.get(16)!.toString('hex'));
  expect(values.get(16)!.equals(Buffer.alloc(32))).toBe(false);
  // All 24, through our 8-at-a-time loop.
  const all = await ours((tpm) => tpm.pcrRead(Array.from({ length: 24 }, (_, i) => i)));
  await tool('tpm2_pcrread', `sha256:${Array.from({ length: 24 }, (_, i) => i).join(',')}`, '-o', 'pcrs24.bin');
  const t24 = readFileSync(file('pcrs24.bin'));
  for (let i = 0; i < 24; i++) expect(t24.subarray(32 * i, 32 * i + 32).toString('hex')).toBe(all.get(i)!.toString('hex'));
});

test("unsealing tpm2-tools' objects leaves no object or session of ours loaded", async () => {
  expect(theirBlobs.length).toBe(2);
  await ours(async (tpm) => {
    for (const { blob, secret } of theirBlobs) expect((await tpm.unseal(blob)).equals(secret)).toBe(true);
    for (const first of [0x80000000, 0x02000000, 0x03000000]) {
      const c = await tpm.run(GetCapability(TPM_CAP.HANDLES, first, 64));
      expect((c.handles ?? []).filter((h) => h >>> 24 === first >>> 24)).toEqual([]);
    }
  });
});
