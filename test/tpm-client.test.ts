/**
 * The TPM client against real swtpm instances: random, info, seal/unseal with and without
 * PCRs, the errors a keystore meets (policy failure, another TPM, tampering, lockout),
 * counters, PCR reads, the persistent SRK, quotes and certification, handle leaks, and
 * transports that meet no TPM or a peer that is not one.
 */
import { createHash, createPublicKey, randomBytes, verify } from 'node:crypto';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { SwarmpayError } from '../src/errors.js';
import { Certify, CreatePrimary, FlushContext, GetCapability, GetRandom, Load, PCR_Extend, PCR_Read, ReadPublic, Unseal } from '../src/tpm/commands.js';
import { TPM_ALG, TPM_CAP, TPM_GENERATED_VALUE, TPM_RH, TPM_ST } from '../src/tpm/constants.js';
import { execute, passwordSession } from '../src/tpm/execute.js';
import { Reader, readAttest, readPublic, type Public, type Signature } from '../src/tpm/marshal.js';
import { AK_TEMPLATE, SRK_PERSISTENT_HANDLE } from '../src/tpm/templates.js';
import { SwtpmTransport } from '../src/tpm/transport.js';
import { Tpm, nameOf, type SealedBlob } from '../src/tpm/tpm.js';
import { startTestTpm, type TestTpm } from './helpers/swtpm.js';

const run = promisify(execFile);

/** A tpm2-tools command against `tcti`; resolves with stdout, rejects with stderr in the message. */
async function tool(tcti: string, cmd: string, args: string[], cwd: string): Promise<string> {
  const { stdout } = await run(cmd, args, { cwd, env: { ...process.env, TPM2TOOLS_TCTI: tcti }, timeout: 30_000, encoding: 'utf8' });
  return stdout;
}

/** The error a promise rejects with (fails if it resolves). */
async function failure(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (e) {
    return e;
  }
  throw new Error('expected a rejection');
}

async function expectCode(p: Promise<unknown>, code: string): Promise<SwarmpayError> {
  const e = await failure(p);
  expect(e).toBeInstanceOf(SwarmpayError);
  expect((e as SwarmpayError).code).toBe(code);
  return e as SwarmpayError;
}

async function handles(tpm: Tpm, first: number): Promise<number[]> {
  const c = await tpm.run(GetCapability(TPM_CAP.HANDLES, first, 64));
  return (c.handles ?? []).filter((h) => h >>> 24 === first >>> 24);
}

/** Verifies a TPM's ECDSA P-256 signature over `message` with the signing key's public area. */
function ecdsaVerifies(pub: Public, message: Buffer, sig: Signature): boolean {
  if (pub.parms.type !== TPM_ALG.ECC || sig.alg !== TPM_ALG.ECDSA) throw new Error('not an ECDSA key and signature');
  const b64 = (b: Uint8Array) => Buffer.from(b).toString('base64url');
  const key = createPublicKey({ key: { kty: 'EC', crv: 'P-256', x: b64(pub.parms.x), y: b64(pub.parms.y) }, format: 'jwk' });
  const p1363 = Buffer.concat([Buffer.alloc(32 - sig.r.length), sig.r, Buffer.alloc(32 - sig.s.length), sig.s]);
  return verify('sha256', message, { key, dsaEncoding: 'ieee-p1363' }, p1363);
}

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

  test('GetRandom returns the sizes asked for, different each time', async () => {
    for (const n of [0, 1, 16, 32, 48]) expect((await tpm.random(n)).length).toBe(n);
    const a = await tpm.random(32);
    const b = await tpm.random(32);
    expect(a.equals(b)).toBe(false);
    // More than a digest's worth: the TPM may return fewer (Part 3, 16.1), never more.
    const big = await tpm.run(GetRandom(1000));
    expect(big.length).toBeGreaterThan(0);
    expect(big.length).toBeLessThanOrEqual(1000);
  });

  test('info() reads the manufacturer, vendor and firmware', async () => {
    const info = await tpm.info();
    expect(info.manufacturer).toBe('IBM');
    expect(info.vendor).toMatch(/SW/);
    expect(info.firmware).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
  });

  test('seal and unseal without PCRs', async () => {
    unbound = await tpm.seal(secret, []);
    expect(unbound.pcrs).toEqual([]);
    expect(unbound.srkName.length).toBe(34);
    const pub = new Reader(Buffer.from(unbound.public, 'hex')).sizedAll(readPublic);
    expect(pub.parms.type).toBe(TPM_ALG.KEYEDHASH);
    expect(pub.authPolicy.length).toBe(0);
    expect((await tpm.unseal(unbound)).equals(secret)).toBe(true);
    // Twice: nothing was consumed.
    expect((await tpm.unseal(unbound)).equals(secret)).toBe(true);
  });
});
