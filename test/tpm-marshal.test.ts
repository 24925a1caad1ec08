/**
 * The TPM wire format and response codes, without a TPM: Writer/Reader, PCR selections,
 * public areas, attestation structures, signatures, and decodeRc against TCG Part 2.
 */
import { randomBytes } from 'node:crypto';
import { TPM_ALG, TPM_ECC_NIST_P256, TPM_GENERATED_VALUE, TPM_ST, TPMA_OBJECT } from '../src/tpm/constants.js';
import {
  MarshalError,
  Reader,
  Writer,
  marshalPublic,
  readAttest,
  readPcrSelections,
  readPublic,
  readSignature,
  writePcrSelections,
  writePublic,
  writeSignature,
  type Public,
  type Signature,
} from '../src/tpm/marshal.js';
import { RC, TpmError, baseRc, decodeRc } from '../src/tpm/rc.js';
import { AK_TEMPLATE, SRK_TEMPLATE, sealedTemplate } from '../src/tpm/templates.js';
import { hex } from './helpers/keys.js';


describe('Writer and Reader', () => {
  test('integers are big-endian and round-trip at their limits', () => {
    const w = new Writer().u8(0xab).u16(0x1234).u32(0xdeadbeef).u64(0x0102030405060708n).u8(0).u16(0xffff).u32(0xffffffff).u64(2n ** 64n - 1n);
    const b = w.done();
    expect(hex(b)).toBe('ab' + '1234' + 'deadbeef' + '0102030405060708' + '00' + 'ffff' + 'ffffffff' + 'ffffffffffffffff');
    const r = new Reader(b);
    expect(r.u8()).toBe(0xab);
    expect(r.u16()).toBe(0x1234);
    expect(r.u32()).toBe(0xdeadbeef);
    expect(r.u64()).toBe(0x0102030405060708n);
    expect(r.u8()).toBe(0);
    expect(r.u16()).toBe(0xffff);
    expect(r.u32()).toBe(0xffffffff);
    expect(r.u64()).toBe(2n ** 64n - 1n);
    expect(() => r.end()).not.toThrow();
  });

  test('tpm2b is a u16 size then the bytes; an empty one is two zero bytes', () => {
    const data = randomBytes(300);
    const b = new Writer().tpm2b(data).tpm2b(new Uint8Array(0)).done();
    expect(b.readUInt16BE(0)).toBe(300);
    expect(b.subarray(2, 302).equals(data)).toBe(true);
    expect(hex(b.subarray(302))).toBe('0000');
    const r = new Reader(b);
    expect(r.tpm2b().equals(data)).toBe(true);
    expect(r.tpm2b().length).toBe(0);
    r.end();
  });

  test('tpm2b larger than 0xffff bytes is refused', () => {
    expect(() => new Writer().tpm2b(new Uint8Array(0x10000))).toThrow(MarshalError);
  });

  test('sized and sized32 prefix a structure with its u16 / u32 length and read back', () => {
    const b = new Writer()
      .sized((w) => w.u32(7).u16(8))
      .sized32((w) => w.u8(1).u8(2).u8(3))
      .done();
    expect(hex(b)).toBe('0006' + '00000007' + '0008' + '00000003' + '010203');
    const r = new Reader(b);
    expect(r.sized((s) => [s.u32(), s.u16()])).toEqual([7, 8]);
    const inner = new Reader(r.bytes(r.u32()));
    expect([inner.u8(), inner.u8(), inner.u8()]).toEqual([1, 2, 3]);
    inner.end();
    r.end();
  });

  test('sized() refuses a structure that does not fill its TPM2B', () => {
    const b = new Writer().sized((w) => w.u32(1).u8(9)).done();
    expect(() => new Reader(b).sized((s) => s.u32())).toThrow(MarshalError);
  });

  test('truncated input throws MarshalError for every reader', () => {
    expect(() => new Reader(Buffer.alloc(0)).u8()).toThrow(MarshalError);
    expect(() => new Reader(Buffer.alloc(1)).u16()).toThrow(MarshalError);
    expect(() => new Reader(Buffer.alloc(3)).u32()).toThrow(MarshalError);
    expect(() => new Reader(Buffer.alloc(7)).u64()).toThrow(MarshalError);
    expect(() => new Reader(Buffer.alloc(4)).bytes(5)).toThrow(MarshalError);
    // A TPM2B whose size says 10 but only 3 bytes follow.
    expect(() => new Reader(Buffer.from('000a010203', 'hex')).tpm2b()).toThrow(MarshalError);
    expect(() => new Reader(Buffer.from('00', 'hex')).tpm2b()).toThrow(MarshalError);
  });

  test('end() throws on trailing bytes, sizedAll() too', () => {
    const r = new Reader(Buffer.from('0001ff', 'hex'));
    r.u16();
    expect(() => r.end()).toThrow(MarshalError);
    expect(() => r.end()).toThrow(/1 unexpected trailing bytes/);
    expect(() => new Reader(Buffer.from('000100', 'hex')).sizedAll((x) => x.u16())).toThrow(MarshalError);
    expect(new Reader(Buffer.from('0001', 'hex')).sizedAll((x) => x.u16())).toBe(1);
  });
});

describe('PCR selections', () => {
  const roundTrip = (sels: { hash: number; pcrs: number[] }[]) => {
    const w = new Writer();
    writePcrSelections(w, sels);
    const b = w.done();
    const r = new Reader(b);
    const back = readPcrSelections(r);
    r.end();
    return { b, back };
  };

  test('bitmap layout: PCR i is byte i>>3, bit i&7, in a 3-byte select', () => {
    const { b } = roundTrip([{ hash: TPM_ALG.SHA256, pcrs: [0, 7, 8, 16, 23] }]);
    // count(4) | hash(2) | sizeofSelect(1)=3 | bitmap(3)
    expect(hex(b)).toBe('00000001' + '000b' + '03' + '81' + '01' + '81');
    expect(hex(roundTrip([{ hash: TPM_ALG.SHA1, pcrs: [16] }]).b)).toBe('00000001' + '0004' + '03' + '000001');
    expect(hex(roundTrip([{ hash: TPM_ALG.SHA256, pcrs: [1, 2, 10] }]).b)).toBe('00000001' + '000b' + '03' + '06' + '04' + '00');
  });

  test('round trip, several banks, empty selection and empty list', () => {
    const sels = [
      { hash: TPM_ALG.SHA256, pcrs: Array.from({ length: 24 }, (_, i) => i) },
      { hash: TPM_ALG.SHA1, pcrs: [] },
      { hash: TPM_ALG.SHA384, pcrs: [3, 11, 19] },
    ];
    expect(roundTrip(sels).back).toEqual(sels);
    const empty = roundTrip([]);
    expect(hex(empty.b)).toBe('00000000');
    expect(empty.back).toEqual([]);
  });

  test('reads a selection with a 4-byte bitmap as a TPM with 32 PCRs may send it', () => {
    const b = Buffer.from('00000001' + '000b' + '04' + '00000080', 'hex');
    expect(readPcrSelections(new Reader(b))).toEqual([{ hash: TPM_ALG.SHA256, pcrs: [31] }]);
  });

  test('out-of-range PCRs are refused', () => {
    for (const p of [24, 31, -1, 1.5, NaN]) {
      expect(() => writePcrSelections(new Writer(), [{ hash: TPM_ALG.SHA256, pcrs: [p] }])).toThrow(MarshalError);
    }
  });

  test('an implausible bank count is refused', () => {
    expect(() => readPcrSelections(new Reader(Buffer.from('ffffffff', 'hex')))).toThrow(MarshalError);
  });
});

describe('public areas', () => {
  const roundTrip = (p: Public): Public => {
    const b = marshalPublic(p);
    const r = new Reader(b);
    const back = readPublic(r);
    r.end();
    // Re-marshalling gives the same bytes.
    expect(marshalPublic(back).equals(b)).toBe(true);
    return back;
  };
  /** Buffers and Uint8Arrays compared as hex, whichever the parser returned. */
  const norm = (v: unknown): unknown =>
    v instanceof Uint8Array ? hex(v) : v !== null && typeof v === 'object' ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, norm(x)])) : v;

  test('SRK template: ECC P-256, AES-128-CFB, restricted decrypt, bytes per TCG provisioning guidance', () => {
    const b = marshalPublic(SRK_TEMPLATE);
    expect(hex(b)).toBe(
      '0023' + // type ECC
        '000b' + // nameAlg SHA-256
        '00030472' + // fixedTPM|fixedParent|sensitiveDataOrigin|userWithAuth|noDA|restricted|decrypt
        '0000' + // authPolicy
        '0006' + '0080' + '0043' + // AES 128 CFB
        '0010' + // scheme NULL
        '0003' + // NIST P-256
        '0010' + // kdf NULL
        '0020' + '00'.repeat(32) + '0020' + '00'.repeat(32),
    );
    expect(norm(roundTrip(SRK_TEMPLATE))).toEqual(norm(SRK_TEMPLATE));
    // As a TPM2B_PUBLIC (CreatePrimary's inPublic, tpm2-tools' -u file): a u16 size, then the area.
    const sized = new Writer().sized((w) => writePublic(w, SRK_TEMPLATE)).done();
    expect(sized.readUInt16BE(0)).toBe(b.length);
    expect(sized.subarray(2).equals(b)).toBe(true);
    expect(norm(new Reader(sized).sized(readPublic))).toEqual(norm(SRK_TEMPLATE));
  });

  test('AK template: restricted ECDSA-SHA256 signing key', () => {
    const back = roundTrip(AK_TEMPLATE);
    expect(norm(back)).toEqual(norm(AK_TEMPLATE));
    expect(back.attributes & TPMA_OBJECT.sign).toBeTruthy();
    expect(back.attributes & TPMA_OBJECT.decrypt).toBe(0);
    expect(back.parms).toMatchObject({ type: TPM_ALG.ECC, symmetric: null, scheme: { alg: TPM_ALG.ECDSA, hash: TPM_ALG.SHA256 }, curve: TPM_ECC_NIST_P256 });
  });

  test('sealed template without policy: userWithAuth, noDA, keyedhash with NULL scheme', () => {
    const t = sealedTemplate(null);
    const b = marshalPublic(t);
    expect(hex(b)).toBe('0008' + '000b' + '00000452' + '0000' + '0010' + '0000');
    expect(norm(roundTrip(t))).toEqual(norm(t));
    expect(t.attributes & TPMA_OBJECT.noDA).toBe(TPMA_OBJECT.noDA);
  });

  test('sealed template with a policy: no userWithAuth, the policy as authPolicy', () => {
    const policy = randomBytes(32);
    const t = sealedTemplate(policy);
    const back = roundTrip(t);
    expect(norm(back)).toEqual(norm(t));
    expect(hex(back.authPolicy)).toBe(hex(policy));
    expect(back.attributes & TPMA_OBJECT.userWithAuth).toBe(0);
    expect(t.attributes & TPMA_OBJECT.noDA).toBe(TPMA_OBJECT.noDA);
  });

  test('an RSA-2048 RSASSA signing key', () => {
    const rsa: Public = {
      nameAlg: TPM_ALG.SHA256,
      attributes: TPMA_OBJECT.fixedTPM | TPMA_OBJECT.fixedParent | TPMA_OBJECT.sensitiveDataOrigin | TPMA_OBJECT.userWithAuth | TPMA_OBJECT.sign,
      authPolicy: new Uint8Array(0),
      parms: { type: TPM_ALG.RSA, symmetric: null, scheme: { alg: TPM_ALG.RSASSA, hash: TPM_ALG.SHA256 }, keyBits: 2048, exponent: 0, modulus: randomBytes(256) },
    };
    const b = marshalPublic(rsa);
    expect(hex(b.subarray(0, 10))).toBe('0001' + '000b' + '00040072' + '0000');
    expect(hex(b.subarray(10, 22))).toBe('0010' + '0014' + '000b' + '0800' + '00000000');
    expect(b.readUInt16BE(22)).toBe(256);
    expect(norm(roundTrip(rsa))).toEqual(norm(rsa));
    // An RSA storage key: AES-128-CFB, NULL scheme, exponent 65537.
    const storage: Public = { ...rsa, parms: { type: TPM_ALG.RSA, symmetric: { alg: TPM_ALG.AES, keyBits: 128, mode: TPM_ALG.CFB }, scheme: null, keyBits: 2048, exponent: 65537, modulus: randomBytes(256) } };
    expect(norm(roundTrip(storage))).toEqual(norm(storage));
  });

  test('an unsupported type and a truncated area are refused', () => {
    expect(() => readPublic(new Reader(Buffer.from('0025000b000000000000', 'hex')))).toThrow(MarshalError);
    const b = marshalPublic(SRK_TEMPLATE);
    expect(() => readPublic(new Reader(b.subarray(0, b.length - 1)))).toThrow(MarshalError);
  });
});

describe('attestation structures', () => {
  const header = (w: Writer, type: number, extra: Buffer) =>
    w
      .u32(TPM_GENERATED_VALUE)
      .u16(type)
      .tpm2b(Buffer.from('000b' + '11'.repeat(32), 'hex')) // qualifiedSigner
      .tpm2b(extra)
      .u64(123456789n) // clock
      .u32(5) // resetCount
      .u32(6) // restartCount
      .u8(1) // safe
      .u64(0x2000000000000001n); // firmwareVersion

  test('a hand-built quote', () => {
    const nonce = randomBytes(32);
    const pcrDigest = randomBytes(32);
    const w = header(new Writer(), TPM_ST.ATTEST_QUOTE, nonce);
    writePcrSelections(w, [{ hash: TPM_ALG.SHA256, pcrs: [0, 16] }]);
    w.tpm2b(pcrDigest);
    const r = new Reader(w.done());
    const a = readAttest(r, TPM_ST.ATTEST_QUOTE);
    r.end();
    expect(a.magic).toBe(0xff544347);
    expect(a.type).toBe(TPM_ST.ATTEST_QUOTE);
    expect(hex(a.qualifiedSigner)).toBe('000b' + '11'.repeat(32));
    expect(a.extraData.equals(nonce)).toBe(true);
    expect(a.clock).toEqual({ clock: 123456789n, resetCount: 5, restartCount: 6, safe: true });
    expect(a.firmwareVersion).toBe(0x2000000000000001n);
    expect(a.quote!.pcrSelect).toEqual([{ hash: TPM_ALG.SHA256, pcrs: [0, 16] }]);
    expect(a.quote!.pcrDigest.equals(pcrDigest)).toBe(true);
    expect(a.certify).toBeUndefined();
  });

  test('a hand-built certify', () => {
    const name = Buffer.concat([Buffer.from('000b', 'hex'), randomBytes(32)]);
    const qname = Buffer.concat([Buffer.from('000b', 'hex'), randomBytes(32)]);
    const w = header(new Writer(), TPM_ST.ATTEST_CERTIFY, Buffer.alloc(0));
    w.tpm2b(name).tpm2b(qname);
    const r = new Reader(w.done());
    const a = readAttest(r);
    r.end();
    expect(a.type).toBe(TPM_ST.ATTEST_CERTIFY);
    expect(a.extraData.length).toBe(0);
    expect(a.certify!.name.equals(name)).toBe(true);
    expect(a.certify!.qualifiedName.equals(qname)).toBe(true);
    expect(a.quote).toBeUndefined();
  });

  test('the wrong type, an unknown type, and a truncated structure are refused', () => {
    const w = header(new Writer(), TPM_ST.ATTEST_CERTIFY, Buffer.alloc(0)).tpm2b(Buffer.alloc(0)).tpm2b(Buffer.alloc(0));
    expect(() => readAttest(new Reader(w.done()), TPM_ST.ATTEST_QUOTE)).toThrow(MarshalError);
    const creation = header(new Writer(), 0x801a, Buffer.alloc(0)).done(); // TPM_ST_ATTEST_CREATION
    expect(() => readAttest(new Reader(creation))).toThrow(MarshalError);
    const full = w.done();
    expect(() => readAttest(new Reader(full.subarray(0, full.length - 1)))).toThrow(MarshalError);
  });
});

describe('signatures', () => {
  const roundTrip = (s: Signature): Buffer => {
    const w = new Writer();
    writeSignature(w, s);
    const b = w.done();
    const r = new Reader(b);
    expect(readSignature(r)).toEqual(s);
    r.end();
    return b;
  };

  test('ECDSA: alg, hash, r, s', () => {
    const s: Signature = { alg: TPM_ALG.ECDSA, hash: TPM_ALG.SHA256, r: randomBytes(32), s: randomBytes(32) };
    const b = roundTrip(s);
    expect(hex(b.subarray(0, 6))).toBe('0018' + '000b' + '0020');
    expect(b.length).toBe(2 + 2 + 34 + 34);
  });

  test('RSASSA: alg, hash, sig', () => {
    const s: Signature = { alg: TPM_ALG.RSASSA, hash: TPM_ALG.SHA256, sig: randomBytes(256) };
    const b = roundTrip(s);
    expect(hex(b.subarray(0, 6))).toBe('0014' + '000b' + '0100');
    expect(b.length).toBe(2 + 2 + 258);
  });

  test('an unsupported signature algorithm is refused', () => {
    expect(() => readSignature(new Reader(Buffer.from('0016000b', 'hex')))).toThrow(MarshalError); // RSAPSS
  });
});

describe('response codes', () => {
  test('format-1 session errors', () => {
    expect(decodeRc(0x9a2)).toEqual({ name: 'TPM_RC_BAD_AUTH', subject: { kind: 'session', index: 1 } });
    expect(decodeRc(0x98e)).toEqual({ name: 'TPM_RC_AUTH_FAIL', subject: { kind: 'session', index: 1 } });
    expect(decodeRc(0xa8e)).toEqual({ name: 'TPM_RC_AUTH_FAIL', subject: { kind: 'session', index: 2 } });
    expect(decodeRc(0x99d)).toEqual({ name: 'TPM_RC_POLICY_FAIL', subject: { kind: 'session', index: 1 } });
  });

  test('format-1 parameter errors', () => {
    expect(decodeRc(0x1c4)).toEqual({ name: 'TPM_RC_VALUE', subject: { kind: 'parameter', index: 1 } });
    expect(decodeRc(0x2c4)).toEqual({ name: 'TPM_RC_VALUE', subject: { kind: 'parameter', index: 2 } });
    expect(decodeRc(0x1df)).toEqual({ name: 'TPM_RC_INTEGRITY', subject: { kind: 'parameter', index: 1 } });
    expect(decodeRc(0x1d5)).toEqual({ name: 'TPM_RC_SIZE', subject: { kind: 'parameter', index: 1 } });
    expect(decodeRc(0xfc4)).toEqual({ name: 'TPM_RC_VALUE', subject: { kind: 'parameter', index: 15 } });
  });

  test('format-1 handle errors and no subject', () => {
    expect(decodeRc(0x18b)).toEqual({ name: 'TPM_RC_HANDLE', subject: { kind: 'handle', index: 1 } });
    expect(decodeRc(0x28b)).toEqual({ name: 'TPM_RC_HANDLE', subject: { kind: 'handle', index: 2 } });
    expect(decodeRc(0x784)).toEqual({ name: 'TPM_RC_VALUE', subject: { kind: 'handle', index: 7 } });
    expect(decodeRc(0x08b)).toEqual({ name: 'TPM_RC_HANDLE' });
    expect(decodeRc(0x09c)).toEqual({ name: 'TPM_RC_KEY' });
  });

  test('format-0 errors and warnings', () => {
    expect(decodeRc(0x921)).toEqual({ name: 'TPM_RC_LOCKOUT' });
    expect(decodeRc(0x922)).toEqual({ name: 'TPM_RC_RETRY' });
    expect(decodeRc(0x100)).toEqual({ name: 'TPM_RC_INITIALIZE' });
    expect(decodeRc(0x101)).toEqual({ name: 'TPM_RC_FAILURE' });
    expect(decodeRc(0x14c)).toEqual({ name: 'TPM_RC_NV_DEFINED' });
    expect(decodeRc(0x14a)).toEqual({ name: 'TPM_RC_NV_UNINITIALIZED' });
    expect(decodeRc(0x902)).toEqual({ name: 'TPM_RC_OBJECT_MEMORY' });
    expect(decodeRc(0x128)).toEqual({ name: 'TPM_RC_PCR_CHANGED' });
  });

  test('unknown codes still decode to something readable', () => {
    expect(decodeRc(0x1bf).name).toBe('TPM_RC_FMT1_0x3f');
    expect(decodeRc(0x17f).name).toBe('TPM_RC_0x17f');
    expect(decodeRc(0x01e).name).toMatch(/TPM 1\.2/); // TPM_BAD_TAG from a TPM 1.2 or a bad tag
  });

  test('baseRc strips handle, session and parameter numbers', () => {
    expect(baseRc(0x9a2)).toBe(RC.BAD_AUTH);
    expect(baseRc(0x98e)).toBe(RC.AUTH_FAIL);
    expect(baseRc(0x99d)).toBe(RC.POLICY_FAIL);
    expect(baseRc(0x1df)).toBe(RC.INTEGRITY);
    expect(baseRc(0x18b)).toBe(RC.HANDLE);
    expect(baseRc(0x921)).toBe(RC.LOCKOUT);
    expect(baseRc(0x14c)).toBe(RC.NV_DEFINED);
  });

  test('TpmError carries the code, names it, and is() compares base codes', () => {
    const e = new TpmError(0x9a2, 'TPM2_Unseal');
    expect(e).toBeInstanceOf(Error);
    expect(e.rc).toBe(0x9a2);
    expect(e.command).toBe('TPM2_Unseal');
    expect(e.rcName).toBe('TPM_RC_BAD_AUTH');
    expect(e.message).toBe('TPM2_Unseal: TPM_RC_BAD_AUTH (session 1) [0x9a2]');
    expect(e.is(RC.BAD_AUTH)).toBe(true);
    expect(e.is(RC.AUTH_FAIL)).toBe(false);
    expect(e.is(0x9a2)).toBe(false); // is() takes base codes
    const h = new TpmError(0x18b, 'TPM2_NV_Read');
    expect(h.is(RC.HANDLE)).toBe(true);
    expect(h.message).toBe('TPM2_NV_Read: TPM_RC_HANDLE (handle 1) [0x18b]');
    const l = new TpmError(0x921, 'TPM2_Unseal');
    expect(l.is(RC.LOCKOUT)).toBe(true);
    expect(l.is(RC.RETRY)).toBe(false);
    expect(new TpmError(0x100, 'TPM2_GetRandom').message).toBe('TPM2_GetRandom: TPM_RC_INITIALIZE [0x100]');
  });
});

describe('public areas swarmpay cannot write back byte for byte are refused, not misread', () => {
  const ecc = (scheme: number[], kdf: number[]) =>
    new Writer()
      .u16(TPM_ALG.ECC).u16(TPM_ALG.SHA256).u32(TPMA_OBJECT.sign).tpm2b(new Uint8Array(0))
      .u16(TPM_ALG.NULL) // symmetric
      .bytes(Buffer.from(scheme.flatMap((v) => [v >> 8, v & 0xff])))
      .u16(TPM_ECC_NIST_P256)
      .bytes(Buffer.from(kdf.flatMap((v) => [v >> 8, v & 0xff])))
      .tpm2b(new Uint8Array(32)).tpm2b(new Uint8Array(32))
      .done();
  test('an ECC key with a KDF', () => {
    expect(() => new Reader(ecc([TPM_ALG.ECDSA, TPM_ALG.SHA256], [0x0020, TPM_ALG.SHA256])).sizedAll(readPublic)).toThrow(MarshalError);
  });
  test('an ECDAA scheme (hash and count)', () => {
    expect(() => new Reader(ecc([0x001a, TPM_ALG.SHA256, 1], [TPM_ALG.NULL])).sizedAll(readPublic)).toThrow(MarshalError);
  });
  test('the same key with ECDSA and no KDF reads', () => {
    expect(new Reader(ecc([TPM_ALG.ECDSA, TPM_ALG.SHA256], [TPM_ALG.NULL])).sizedAll(readPublic).parms.type).toBe(TPM_ALG.ECC);
  });
});
