/**
 * Quotes and attestation documents against real software TPMs: what our verifier accepts,
 * every way a document can be wrong, and cross-checks with the independent tpm2-tools
 * (our quotes pass tpm2_checkquote; tpm2_quote's quotes pass our verifier).
 */
import { createHash, createPublicKey, generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { akPem, attest, parsePcrAllowList, pemMatchesPublic, verifyAttestation, type AttestationDoc } from '../src/tpm/attestation.js';
import { PCR_Extend } from '../src/tpm/commands.js';
import { TPM_ALG, TPM_ECC_NIST_P256, TPM_GENERATED_VALUE, TPM_ST, TPMA_OBJECT } from '../src/tpm/constants.js';
import { authorize, passwordSession } from '../src/tpm/execute.js';
import { Reader, Writer, marshalPublic, nameOf, readPublic, writePcrSelections, writeSignature, type Public } from '../src/tpm/marshal.js';
import { AK_TEMPLATE } from '../src/tpm/templates.js';
import type { Tpm } from '../src/tpm/tpm.js';
import { startTestTpm, type TestTpm } from './helpers/swtpm.js';
import { tempDir } from './helpers/tmp.js';
import { requireTpm2Tools, tpm2 } from './helpers/tpm2-tools.js';
import { thrown } from './helpers/expect.js';

const PCRS = [0, 7, 16];
const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest();

/** A PEM re-encoded by node:crypto, so that PEMs from different encoders compare as text. */
const reencoded = (pem: string) => createPublicKey(pem).export({ type: 'spki', format: 'pem' }).toString();


/** Asserts `f` refuses with ATTESTATION_INVALID (and a message matching `message`). */
function refused(f: () => unknown, message?: RegExp): void {
  const e = thrown(f);
  expect(`${e.code}: ${e.message}`).toMatch(/^ATTESTATION_INVALID: /);
  if (message) expect(e.message).toMatch(message);
}

function flipByte(hex: string, i: number): string {
  const b = Buffer.from(hex, 'hex');
  b[i]! ^= 0x01;
  return b.toString('hex');
}

async function extendPcr(tpm: Tpm, pcr: number): Promise<void> {
  await tpm.run(PCR_Extend(authorize(pcr, passwordSession()), TPM_ALG.SHA256, randomBytes(32)));
}

async function withTpm<R>(t: TestTpm, f: (tpm: Tpm) => Promise<R>): Promise<R> {
  const tpm = await t.open();
  try {
    return await f(tpm);
  } finally {
    // swtpm serves one connection at a time: tpm2-tools get their turn only after this.
    await tpm.close();
  }
}

/**
 * A quote as some other software could make it with a key of its own: valid in every way
 * a verifier can check, except that no TPM made it. `attributes` is what the forger claims.
 */
function forgedDoc(nonce: Buffer, attributes: number): AttestationDoc {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk = publicKey.export({ format: 'jwk' });
  const pub: Public = {
    nameAlg: TPM_ALG.SHA256,
    attributes,
    authPolicy: new Uint8Array(0),
    parms: { type: TPM_ALG.ECC, symmetric: null, scheme: { alg: TPM_ALG.ECDSA, hash: TPM_ALG.SHA256 }, curve: TPM_ECC_NIST_P256, x: Buffer.from(jwk.x!, 'base64url'), y: Buffer.from(jwk.y!, 'base64url') },
  };
  const pcr16 = Buffer.alloc(32); // the pristine state the forger claims
  const w = new Writer().u32(TPM_GENERATED_VALUE).u16(TPM_ST.ATTEST_QUOTE).tpm2b(nameOf(pub)).tpm2b(nonce);
  w.u64(1000n).u32(1).u32(0).u8(1).u64(0n); // clock info, firmware version
  writePcrSelections(w, [{ hash: TPM_ALG.SHA256, pcrs: [16] }]);
  const quote = w.tpm2b(sha256(pcr16)).done();
  const rs = sign('sha256', quote, { key: privateKey, dsaEncoding: 'ieee-p1363' });
  const sw = new Writer();
  writeSignature(sw, { alg: TPM_ALG.ECDSA, hash: TPM_ALG.SHA256, r: rs.subarray(0, 32), s: rs.subarray(32) });
  return {
    format: 'swarmpay-attestation',
    version: 1,
    nonce: nonce.toString('hex'),
    pcrs: { hash: 'sha256', values: { '16': pcr16.toString('hex') } },
    quote: quote.toString('hex'),
    signature: sw.done().toString('hex'),
    akPublic: akPem(pub),
    akPublicArea: marshalPublic(pub).toString('hex'),
    akName: nameOf(pub).toString('hex'),
  };
}

describe('TPM attestation', () => {
  let a: TestTpm;
  let b: TestTpm;
  const nonce = randomBytes(32);
  let doc: AttestationDoc;
  let docB: AttestationDoc;
  let firmware: string;

  beforeAll(async () => {
    [a, b] = await Promise.all([startTestTpm(), startTestTpm()]);
    await withTpm(a, async (tpm) => {
      await extendPcr(tpm, 16); // so that one quoted PCR is not all zeros
      doc = await attest(tpm, nonce, [16, 0, 7]);
      firmware = (await tpm.info()).firmware;
    });
    docB = await withTpm(b, (tpm) => attest(tpm, nonce, PCRS));
  });
  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
  });

  describe('our attest, our verify', () => {
    test('a fresh document verifies and reports what was quoted', async () => {
      expect(doc).toMatchObject({ format: 'swarmpay-attestation', version: 1, nonce: nonce.toString('hex'), pcrs: { hash: 'sha256' } });
      expect(Object.keys(doc.pcrs.values)).toEqual(['0', '7', '16']);
      const now = await withTpm(a, (tpm) => tpm.pcrRead(PCRS));
      expect(doc.pcrs.values['16']).toBe(now.get(16)!.toString('hex'));
      expect(doc.pcrs.values['16']).not.toBe('00'.repeat(32));

      // Verified as it would be after a trip through a file.
      const v = verifyAttestation(JSON.parse(JSON.stringify(doc)), { nonce });
      expect(v.akName).toBe(doc.akName);
      expect(v.akPinned).toBe(false);
      expect(v.pcrs).toEqual(doc.pcrs.values);
      expect(v.firmwareVersion).toBe(firmware);
      expect(v.clock.resetCount).toBeGreaterThanOrEqual(0);
      expect(BigInt(v.clock.clockMs)).toBeGreaterThan(0n);
    });

    test('pinned to its own AK it verifies; the AK PEM and public area agree', async () => {
      expect(verifyAttestation(doc, { nonce, ak: doc.akPublic }).akPinned).toBe(true);
      // The AK pinned from an independent read of the TPM, not from the document itself.
      const ak = await withTpm(a, (tpm) => tpm.akPublic());
      expect(akPem(ak.outPublic)).toBe(doc.akPublic);
      expect(ak.name.toString('hex')).toBe(doc.akName);
      expect(pemMatchesPublic(doc.akPublic, ak.outPublic)).toBe(true);
      expect(pemMatchesPublic(docB.akPublic, ak.outPublic)).toBe(false);
      expect(pemMatchesPublic('not a pem', ak.outPublic)).toBe(false);
      verifyAttestation(doc, { nonce, ak: akPem(ak.outPublic) });
    });

    test('an allow list with the quoted values, or alternatives among them, passes', () => {
      const v = doc.pcrs.values;
      const list = parsePcrAllowList(JSON.stringify({ '0': v['0'], '16': ['ab'.repeat(32), `0x${v['16']!.toUpperCase()}`] }));
      expect(list['16']).toEqual(['ab'.repeat(32), v['16']]);
      expect(verifyAttestation(doc, { nonce, expectPcrs: list }).pcrs['16']).toBe(v['16']);
    });

    test('a PCR extended between quote and read is detected and the quote taken again', async () => {
      await withTpm(a, async (tpm) => {
        const real = tpm.quote.bind(tpm);
        let calls = 0;
        let races = 1;
        // Simulates the race: the read after the quote sees a PCR that moved meanwhile.
        tpm.quote = async (n, p) => {
          const q = await real(n, p);
          if (++calls > races) return q;
          await extendPcr(tpm, 16);
          return { ...q, pcrValues: await tpm.pcrRead(p) };
        };
        const retried = await attest(tpm, nonce, PCRS);
        expect(calls).toBe(2);
        expect(verifyAttestation(retried, { nonce }).pcrs['16']).toBe((await tpm.pcrRead([16])).get(16)!.toString('hex'));

        calls = 0;
        races = Infinity;
        await expect(attest(tpm, nonce, PCRS)).rejects.toMatchObject({ code: 'ATTESTATION_INVALID', message: expect.stringMatching(/changed between quote and read/) });
        expect(calls).toBe(3);
      });
    });

    test('attest refuses a missing nonce and impossible PCRs before asking the TPM', async () => {
      await withTpm(a, async (tpm) => {
        await expect(attest(tpm, new Uint8Array(0), PCRS)).rejects.toMatchObject({ code: 'USAGE' });
        await expect(attest(tpm, randomBytes(65), PCRS)).rejects.toMatchObject({ code: 'USAGE' });
        await expect(attest(tpm, nonce, [])).rejects.toMatchObject({ code: 'USAGE' });
        await expect(attest(tpm, nonce, [24])).rejects.toMatchObject({ code: 'USAGE' });
      });
    });
  });

  describe('refused documents', () => {
    test('a wrong nonce: stale or replayed', () => {
      refused(() => verifyAttestation(doc, { nonce: randomBytes(32) }), /another nonce/);
      refused(() => verifyAttestation(doc, { nonce: nonce.subarray(0, 31) }), /another nonce/);
      // The document's own nonce field cannot talk the verifier into another one.
      refused(() => verifyAttestation({ ...doc, nonce: '00'.repeat(32) }, { nonce }), /nonce field/);
      expect(thrown(() => verifyAttestation(doc, { nonce: new Uint8Array(0) })).code).toBe('USAGE');
    });

    test('one flipped bit in any byte of the quote', () => {
      const n = doc.quote.length / 2;
      for (let i = 0; i < n; i++) refused(() => verifyAttestation({ ...doc, quote: flipByte(doc.quote, i) }, { nonce }));
      refused(() => verifyAttestation({ ...doc, quote: flipByte(doc.quote, n - 1) }, { nonce }), /signature over the quote does not verify/);
    });

    test('one flipped bit in any byte of the signature', () => {
      const n = doc.signature.length / 2;
      for (let i = 0; i < n; i++) refused(() => verifyAttestation({ ...doc, signature: flipByte(doc.signature, i) }, { nonce }));
      refused(() => verifyAttestation({ ...doc, signature: flipByte(doc.signature, n - 1) }, { nonce }), /signature over the quote does not verify/);
    });

    test('tampered PCR values, or PCRs added or left out', () => {
      const values = doc.pcrs.values;
      refused(() => verifyAttestation({ ...doc, pcrs: { hash: 'sha256', values: { ...values, '16': flipByte(values['16']!, 0) } } }, { nonce }), /not the ones quoted/);
      refused(() => verifyAttestation({ ...doc, pcrs: { hash: 'sha256', values: { ...values, '16': '00'.repeat(32) } } }, { nonce }), /not the ones quoted/);
      const { '7': _dropped, ...without7 } = values;
      refused(() => verifyAttestation({ ...doc, pcrs: { hash: 'sha256', values: without7 } }, { nonce }), /covers PCRs 0xb:0,7,16 but the document lists SHA-256 PCRs 0,16/);
      refused(() => verifyAttestation({ ...doc, pcrs: { hash: 'sha256', values: { ...values, '8': '00'.repeat(32) } } }, { nonce }), /the document lists SHA-256 PCRs 0,7,8,16/);
    });

    test("another TPM's AK: pinned AK of TPM B, quote from TPM A", () => {
      expect(docB.akPublic).not.toBe(doc.akPublic);
      verifyAttestation(docB, { nonce, ak: docB.akPublic });
      refused(() => verifyAttestation(doc, { nonce, ak: docB.akPublic }), /another TPM's attestation key/);
      // Swapping in all of B's AK fields keeps the document consistent, but B never signed A's quote.
      const swapped = { ...doc, akPublic: docB.akPublic, akPublicArea: docB.akPublicArea, akName: docB.akName };
      refused(() => verifyAttestation(swapped, { nonce }), /signature over the quote does not verify/);
    });

    test('an allow list the quote does not satisfy', () => {
      refused(() => verifyAttestation(doc, { nonce, expectPcrs: { '16': '00'.repeat(32) } }), /PCR 16 is [0-9a-f]{64}, which the allow list does not allow/);
      refused(() => verifyAttestation(doc, { nonce, expectPcrs: { '0': doc.pcrs.values['0']!, '16': ['11'.repeat(32), '22'.repeat(32)] } }), /PCR 16 .* does not allow/);
      refused(() => verifyAttestation(doc, { nonce, expectPcrs: { '23': '00'.repeat(32) } }), /PCR 23 is required by the allow list but not in the quote/);
    });

    test('an akPublic PEM swapped for another key', () => {
      refused(() => verifyAttestation({ ...doc, akPublic: docB.akPublic }, { nonce }), /akPublic is not the key of akPublicArea/);
      const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ type: 'spki', format: 'pem' }).toString();
      refused(() => verifyAttestation({ ...doc, akPublic: rsa }, { nonce }), /akPublic is not the key of akPublicArea/);
      refused(() => verifyAttestation({ ...doc, akPublic: '-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n' }, { nonce }), /akPublic is not the key/);
      // An akName that is not the public area's name.
      refused(() => verifyAttestation({ ...doc, akName: docB.akName }, { nonce }), /akName .* is not the name of akPublicArea/);
    });

    test('a key that is not restricted could sign anything: refused; one that lies about it is caught by pinning', () => {
      const attrs = AK_TEMPLATE.attributes;
      refused(() => verifyAttestation(forgedDoc(nonce, attrs & ~TPMA_OBJECT.restricted), { nonce }), /not a restricted TPM signing key: its attributes lack restricted/);
      refused(() => verifyAttestation(forgedDoc(nonce, attrs & ~TPMA_OBJECT.fixedTPM & ~TPMA_OBJECT.sign), { nonce }), /lack fixedTPM, sign/);
      // Attributes are only claims: a software key claiming them is self-consistent...
      const liar = forgedDoc(nonce, attrs);
      expect(verifyAttestation(liar, { nonce }).akPinned).toBe(false);
      // ...and only the verifier's pinned AK tells the real TPM from it.
      refused(() => verifyAttestation(liar, { nonce, ak: doc.akPublic }), /another TPM's attestation key/);
    });

    test('garbage is ATTESTATION_INVALID, never a TypeError', () => {
      const fields = ['format', 'version', 'nonce', 'pcrs', 'quote', 'signature', 'akPublic', 'akPublicArea', 'akName'] as const;
      const hexFields = ['nonce', 'quote', 'signature', 'akPublicArea', 'akName'] as const;
      const bad: unknown[] = [null, undefined, 42, 'swarmpay-attestation', [], [doc], {}, JSON.stringify(doc)];
      for (const f of fields) {
        const { [f]: _gone, ...rest } = doc;
        bad.push(rest, { ...doc, [f]: null }, { ...doc, [f]: 7 }, { ...doc, [f]: {} }, { ...doc, [f]: [] });
      }
      for (const f of hexFields) {
        const v = doc[f];
        bad.push({ ...doc, [f]: 'zz' }, { ...doc, [f]: v.toUpperCase() }, { ...doc, [f]: v.slice(1) }, { ...doc, [f]: '' });
        bad.push({ ...doc, [f]: v.slice(0, -2) }, { ...doc, [f]: `${v}00` }, { ...doc, [f]: randomBytes(v.length / 2).toString('hex') });
      }
      bad.push(
        { ...doc, format: 'other' },
        { ...doc, version: 2 },
        { ...doc, version: '1' },
        { ...doc, pcrs: { ...doc.pcrs, hash: 'sha1' } },
        { ...doc, pcrs: { hash: 'sha256' } },
        { ...doc, pcrs: { hash: 'sha256', values: {} } },
        { ...doc, pcrs: { hash: 'sha256', values: [] } },
        { ...doc, pcrs: { hash: 'sha256', values: { ...doc.pcrs.values, '24': '00'.repeat(32) } } },
        { ...doc, pcrs: { hash: 'sha256', values: { ...doc.pcrs.values, '07': '00'.repeat(32) } } },
        { ...doc, pcrs: { hash: 'sha256', values: { ...doc.pcrs.values, x: '00'.repeat(32) } } },
        { ...doc, pcrs: { hash: 'sha256', values: { ...doc.pcrs.values, '16': '00'.repeat(31) } } },
        { ...doc, pcrs: { hash: 'sha256', values: { ...doc.pcrs.values, '16': 16 } } },
        { ...doc, akPublicArea: '00' },
        { ...doc, akPublicArea: 'ffff'.repeat(40) },
        { ...doc, signature: '0018' },
        { ...doc, signature: '0018000b0000' },
        { ...doc, quote: 'ff544347' },
      );
      for (const d of bad) refused(() => verifyAttestation(d, { nonce }));
    });

    test('bad allow lists and pinned AKs are INVALID_FILE', () => {
      const badLists = ['not json', '[]', 'null', '"x"', '{"x": "00"}', '{"24": "00"}', '{"7": "abc"}', '{"7": []}', '{"7": [1]}', `{"7": "${'0'.repeat(62)}"}`];
      for (const text of badLists) expect(thrown(() => parsePcrAllowList(text)).code).toBe('INVALID_FILE');
      expect(thrown(() => verifyAttestation(doc, { nonce, expectPcrs: { '7': 'nope' } })).code).toBe('INVALID_FILE');
      expect(thrown(() => verifyAttestation(doc, { nonce, ak: 'not a pem' })).code).toBe('INVALID_FILE');
    });
  });

  describe('cross-checks with tpm2-tools', () => {
    let tmp: ReturnType<typeof tempDir>;

    beforeAll(async () => {
      await requireTpm2Tools();
      tmp = tempDir('swarmpay-tpm2-tools-');
    });
    afterAll(() => tmp?.remove());

    /** Runs a tpm2-tools command against TPM A, in the temporary folder. */
    const tool = (name: string, args: string[]) => tpm2(a.tcti, tmp.dir, name, ...args);
    const file = (name: string) => path.join(tmp.dir, name);

    test('a quote our client made passes tpm2_checkquote (and a wrong nonce fails it)', async () => {
      const pcrs = Object.keys(doc.pcrs.values);
      writeFileSync(file('our-ak.pem'), doc.akPublic);
      writeFileSync(file('our-quote.msg'), Buffer.from(doc.quote, 'hex'));
      writeFileSync(file('our-quote.sig'), Buffer.from(doc.signature, 'hex'));
      writeFileSync(file('our-quote.pcrs'), Buffer.concat(pcrs.map((p) => Buffer.from(doc.pcrs.values[p]!, 'hex'))));
      const args = ['-u', 'our-ak.pem', '-m', 'our-quote.msg', '-s', 'our-quote.sig', '-f', 'our-quote.pcrs', '-l', `sha256:${pcrs.join(',')}`, '-g', 'sha256'];
      const stdout = await tool('tpm2_checkquote', [...args, '-q', doc.nonce]);
      expect(stdout).toContain(doc.pcrs.values['16']!.toUpperCase()); // exit 0 is the verdict; it also echoes the PCRs
      await expect(tool('tpm2_checkquote', [...args, '-q', randomBytes(32).toString('hex')])).rejects.toThrow(/nonce/);
      // The tool does check the PCR values too.
      writeFileSync(file('our-quote.pcrs'), Buffer.alloc(32 * pcrs.length));
      await expect(tool('tpm2_checkquote', [...args, '-q', doc.nonce])).rejects.toThrow();
    });

    test.each([
      ['RSA-2048 RSASSA', 'rsa', TPM_ALG.RSA, ['-G', 'rsa', '-s', 'rsassa']],
      ['ECC P-256 ECDSA', 'ecc', TPM_ALG.ECC, ['-G', 'ecc', '-s', 'ecdsa']],
    ] as const)('a quote tpm2_quote made with an %s AK passes our verifier', async (_kind, id, type, keyArgs) => {
      await tool('tpm2_createek', ['-c', `ek-${id}.ctx`, '-G', 'rsa', '-u', `ek-${id}.pub`]);
      await tool('tpm2_createak', ['-C', `ek-${id}.ctx`, '-c', `ak-${id}.ctx`, ...keyArgs, '-g', 'sha256', '-u', `ak-${id}.pem`, '-f', 'pem', '-n', `ak-${id}.name`]);
      await tool('tpm2_readpublic', ['-c', `ak-${id}.ctx`, '-o', `ak-${id}.pub`]); // TPM2B_PUBLIC
      const toolNonce = randomBytes(20);
      await tool('tpm2_quote', ['-c', `ak-${id}.ctx`, '-q', toolNonce.toString('hex'), '-l', 'sha256:0,16', '-m', `q-${id}.msg`, '-s', `q-${id}.sig`, '-o', `q-${id}.pcrs`, '-F', 'values', '-g', 'sha256']);

      const pcrBytes = readFileSync(file(`q-${id}.pcrs`)); // PCR 0 then 16, 32 bytes each
      expect(pcrBytes.length).toBe(64);
      const ours = await withTpm(a, (tpm) => tpm.pcrRead([0, 16]));
      expect(pcrBytes.subarray(32).equals(ours.get(16)!)).toBe(true);
      const publicArea = readFileSync(file(`ak-${id}.pub`)).subarray(2); // the TPMT_PUBLIC inside
      const akPublic = readFileSync(file(`ak-${id}.pem`), 'utf8');
      const toolDoc: AttestationDoc = {
        format: 'swarmpay-attestation',
        version: 1,
        nonce: toolNonce.toString('hex'),
        pcrs: { hash: 'sha256', values: { '0': pcrBytes.subarray(0, 32).toString('hex'), '16': pcrBytes.subarray(32).toString('hex') } },
        quote: readFileSync(file(`q-${id}.msg`)).toString('hex'),
        signature: readFileSync(file(`q-${id}.sig`)).toString('hex'),
        akPublic,
        akPublicArea: publicArea.toString('hex'),
        akName: readFileSync(file(`ak-${id}.name`)).toString('hex'),
      };
      expect(new Reader(publicArea).sizedAll(readPublic).parms.type).toBe(type);
      expect(akPem(new Reader(publicArea).sizedAll(readPublic))).toBe(reencoded(akPublic));

      const v = verifyAttestation(toolDoc, { nonce: toolNonce, ak: akPublic, expectPcrs: { '16': ours.get(16)!.toString('hex') } });
      expect(v.akName).toBe(toolDoc.akName);
      expect(v.pcrs).toEqual(toolDoc.pcrs.values);
      refused(() => verifyAttestation(toolDoc, { nonce: randomBytes(20) }), /another nonce/);
      refused(() => verifyAttestation(toolDoc, { nonce: toolNonce, ak: doc.akPublic }), /another TPM's attestation key/);
      refused(() => verifyAttestation({ ...toolDoc, quote: flipByte(toolDoc.quote, 40) }, { nonce: toolNonce }), /signature/);
    });
  });
});
