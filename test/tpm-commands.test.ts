/**
 * Commands as typed descriptions, without a TPM: a handle the spec authorizes is an
 * AuthHandle carrying its session, so a command with a session missing or one too many
 * does not compile; the authorization area follows from those AuthHandles, then the
 * sessions that only encrypt; and the bytes on the wire are the ones the client sent
 * before handles carried their sessions (recorded from it, password and policy sessions,
 * which have no random nonce).
 */
import {
  ActivateCredential, Certify, Create, CreatePrimary, EvictControl, GetRandom, Load, NV_DefineSpace, NV_Increment, NV_Read, NV_UndefineSpace,
  PCR_Extend, PolicyPCR, PolicySecret, Quote, ReadPublic, Unseal,
} from '../src/tpm/commands.js';
import { TPM_ALG, TPM_RH, TPM_SE, TPMA_NV } from '../src/tpm/constants.js';
import { authorize, execute, passwordSession, policySession, withSessions, type Command } from '../src/tpm/execute.js';
import { Reader } from '../src/tpm/marshal.js';
import { TpmError } from '../src/tpm/rc.js';
import { encryptSession, hmacSession } from '../src/tpm/sessions.js';
import { AES_128_CFB, type AuthSession } from '../src/tpm/session-crypto.js';
import { SRK_PERSISTENT_HANDLE, SRK_TEMPLATE, sealedTemplate } from '../src/tpm/templates.js';
import type { Transport } from '../src/tpm/transport.js';
import { expectCode } from './helpers/expect.js';

/** The bytes `execute` sends for `cmd`, answered with TPM_RC_FAILURE so that nothing else happens; what it refuses to send is thrown. */
async function wire<R>(cmd: Command<R>): Promise<Buffer> {
  const sent: Buffer[] = [];
  const t: Transport = {
    describe: 'recorder',
    close: async () => undefined,
    send: async (b) => {
      sent.push(Buffer.from(b));
      return Buffer.from('80010000000a00000101', 'hex');
    },
  };
  await execute(t, cmd).catch((e: unknown) => {
    if (!(e instanceof TpmError)) throw e;
  });
  expect(sent).toHaveLength(1);
  return sent[0]!;
}

/** The session handles of a command's authorization area, which must hold `sessionCount` sessions. */
function sessionHandles(bytes: Buffer, handleCount: number, sessionCount: number): number[] {
  const r = new Reader(bytes.subarray(10 + 4 * handleCount));
  const area = new Reader(r.bytes(r.u32()));
  const handles = Array.from({ length: sessionCount }, () => {
    const h = area.u32();
    area.tpm2b(); // nonceCaller
    area.u8(); // attributes
    area.tpm2b(); // hmac
    return h;
  });
  area.end();
  return handles;
}

/** A started HMAC session as `startSession` returns it, for commands that never reach a TPM. */
function fakeSession(handle: number): AuthSession {
  return { handle, type: TPM_SE.HMAC, hashAlg: TPM_ALG.SHA256, sessionKey: Buffer.alloc(0), nonceTPM: Buffer.alloc(32, 1), symmetric: AES_128_CFB, authValueNeeded: false, state: 'open' };
}

const bytes = (v: number, n: number) => Buffer.alloc(n, v);
const pw = passwordSession;
const name = Buffer.concat([Buffer.from([0, 0x0b]), bytes(0x11, 32)]);
const INDEX = 0x01535001;
const sel = [{ hash: TPM_ALG.SHA256, pcrs: [0, 7] }];

describe('a command is built from its handles', () => {
  test('a handle the command authorizes without its session, or one it does not authorize with one, does not compile', () => {
    const s = fakeSession(0x02000000);
    // Never run: each line is there for the type error it must raise (tsc -p tsconfig.test.json).
    const wrong = [
      // @ts-expect-error CreatePrimary authorizes its hierarchy: a bare handle has no session.
      () => CreatePrimary(TPM_RH.OWNER, SRK_TEMPLATE),
      // @ts-expect-error the session cannot be left out of the AuthHandle either.
      () => Create({ handle: SRK_PERSISTENT_HANDLE }, SRK_TEMPLATE),
      // @ts-expect-error Certify authorizes both the object and the signing key.
      () => Certify(authorize(0x80000001, pw()), 0x80000002, bytes(0xcc, 4)),
      // @ts-expect-error NV_UndefineSpace authorizes the hierarchy only: a session for the index would be one too many.
      () => NV_UndefineSpace(authorize(TPM_RH.OWNER, pw()), authorize(INDEX, pw())),
      // @ts-expect-error a handle and its session apart, as commands once took them, are no longer a command.
      () => PCR_Extend(16, pw(), TPM_ALG.SHA256, bytes(0xab, 32)),
      // @ts-expect-error a session added to encrypt is no authorization: a password cannot be one.
      () => withSessions(GetRandom(8), pw()),
      // @ts-expect-error nor an authorization's HMAC session.
      () => withSessions(GetRandom(8), hmacSession(s)),
      // @ts-expect-error a session that only encrypts must encrypt one way at least.
      () => encryptSession(s, {}),
    ];
    expect(wrong).toHaveLength(8);
  });

  test('the bytes on the wire are the same as when handles and sessions were given apart', async () => {
    const nvPub = { index: INDEX, nameAlg: TPM_ALG.SHA256, attributes: TPMA_NV.NT_COUNTER | TPMA_NV.AUTHWRITE | TPMA_NV.AUTHREAD | TPMA_NV.NO_DA, authPolicy: Buffer.alloc(0), dataSize: 8 };
    const recorded: [Command<unknown>, string][] = [
      [CreatePrimary(authorize(TPM_RH.OWNER, pw()), SRK_TEMPLATE), '800200000083000001314000000100000009400000090000010000000400000000005a0023000b0003047200000006008000430010000300100020000000000000000000000000000000000000000000000000000000000000000000200000000000000000000000000000000000000000000000000000000000000000000000000000'],
      [Create(authorize({ handle: SRK_PERSISTENT_HANDLE, name }, pw()), sealedTemplate(null), bytes(0x22, 4), bytes(0x33, 2)), '80020000003d000001538100000100000009400000090000010000000a00023333000422222222000e0008000b00000452000000100000000000000000'],
      [Load(authorize(SRK_PERSISTENT_HANDLE, pw(bytes(0x44, 3))), bytes(0x55, 4), bytes(0x66, 4)), '80020000002a00000157810000010000000c400000090000010003444444000455555555000466666666'],
      [Unseal(authorize(0x80000001, policySession(0x03000000))), '80020000001b0000015e8000000100000009030000000000010000'],
      [PCR_Extend(authorize(16, pw(bytes(0x77, 2))), TPM_ALG.SHA256, bytes(0xab, 32)), '80020000004300000182000000100000000b400000090000010002777700000001000babababababababababababababababababababababababababababababababab'],
      [NV_DefineSpace(authorize(TPM_RH.OWNER, pw()), bytes(0x88, 4), nvPub), '8002000000310000012a4000000100000009400000090000010000000488888888000e01535001000b0204001400000008'],
      [NV_UndefineSpace(authorize(TPM_RH.OWNER, pw()), INDEX), '80020000001f00000122400000010153500100000009400000090000010000'],
      [NV_Increment(authorize({ handle: INDEX, name }, pw(bytes(0x99, 2))), { handle: INDEX, name }), '8002000000210000013401535001015350010000000b4000000900000100029999'],
      [NV_Read(authorize(TPM_RH.OWNER, pw()), INDEX, 8, 2), '8002000000230000014e40000001015350010000000940000009000001000000080002'],
      [Quote(authorize(0x80000002, pw()), bytes(0xaa, 4), sel), '80020000002d0000015880000002000000094000000900000100000004aaaaaaaa001000000001000b03810000'],
      [Certify(authorize(0x80000001, pw()), authorize(0x80000002, pw(bytes(0xbb, 1))), bytes(0xcc, 4)), '80020000003100000148800000018000000200000013400000090000010000400000090000010001bb0004cccccccc0010'],
      [EvictControl(authorize(TPM_RH.OWNER, pw()), 0x80000001, SRK_PERSISTENT_HANDLE), '8002000000230000012040000001800000010000000940000009000001000081000001'],
      [PolicySecret(authorize(TPM_RH.ENDORSEMENT, pw()), 0x03000001), '800200000029000001514000000b030000010000000940000009000001000000000000000000000000'],
      [ActivateCredential(authorize(0x80000001, pw()), authorize(0x80000002, policySession(0x03000001)), bytes(0xdd, 4), bytes(0xee, 4)), '800200000034000001478000000180000002000000124000000900000100000300000100000100000004dddddddd0004eeeeeeee'],
      [PolicyPCR(0x03000001, Buffer.alloc(0), sel), '80010000001a0000017f03000001000000000001000b03810000'],
      [ReadPublic(SRK_PERSISTENT_HANDLE), '80010000000e0000017381000001'],
    ];
    for (const [cmd, hex] of recorded) expect([cmd.name, (await wire(cmd)).toString('hex')]).toEqual([cmd.name, hex]);
  });

  test('the authorization area: the AuthHandles\' sessions in handle order, then those that only encrypt; at most three', async () => {
    const enc = fakeSession(0x02000005);
    const read = withSessions(NV_Read(authorize(TPM_RH.OWNER, pw()), INDEX, 8), encryptSession(enc, { encrypt: true }));
    expect(sessionHandles(await wire(read), 2, 2)).toEqual([TPM_RH.RS_PW, enc.handle]);

    const certify = Certify(authorize({ handle: 0x80000001, name }, hmacSession(fakeSession(0x02000001))), authorize(0x80000002, pw()), bytes(0xcc, 4));
    expect(sessionHandles(await wire(certify), 2, 2)).toEqual([0x02000001, TPM_RH.RS_PW]);

    const four = withSessions(certify, encryptSession(fakeSession(0x02000002), { decrypt: true }), encryptSession(fakeSession(0x02000003), { encrypt: true }));
    expect((await expectCode(wire(four), 'USAGE')).message).toMatch(/at most 3/);
  });
});
