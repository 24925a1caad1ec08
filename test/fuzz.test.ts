/**
 * Fuzzing with fast-check: everything a stranger's bytes reach, fed mutations of valid input
 * and bytes of its own choosing. Each parser either reads or refuses with the error its
 * layer promises (a SwarmpayError, a MarshalError, a TpmError); nothing else is ever thrown,
 * and nothing damaged is read as something shorter. A short seeded run here (in `npm test`);
 * `npm run fuzz` runs the same properties long, with a fresh seed.
 */
import fc from 'fast-check';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { SwarmpayError } from '../src/errors.js';
import { FrameDecoder, HEADER_LEN } from '../src/peer/frames.js';
import { HandshakeState, type CipherState } from '../src/peer/noise.js';
import { generateStaticKey } from '../src/peer/keys.js';
import { encodeMessage, parseMessage, type Message } from '../src/channel/messages.js';
import { encodeEscrowMessage, parseEscrowMessage } from '../src/escrow/messages.js';
import { draftOffer, parseOffer, signOffer } from '../src/escrow/offer.js';
import { parseAcceptance } from '../src/escrow/seller.js';
import { MarshalError, Reader, readAttest, readPcrSelections, readPublic, readSignature } from '../src/tpm/marshal.js';
import { execute, type Command } from '../src/tpm/execute.js';
import { GetCapability, PCR_Read, ReadPublic, StartAuthSession } from '../src/tpm/commands.js';
import { TPM_ALG, TPM_CAP, TPM_SE } from '../src/tpm/constants.js';
import { TpmError } from '../src/tpm/rc.js';
import { Journal } from '../src/keystore/journal.js';
import type { Json } from '../src/util/canonical-json.js';
import { tempDir } from './helpers/tmp.js';

const RUNS = Number(process.env.SWARMPAY_FUZZ_RUNS ?? 200);
const SEED = Number(process.env.SWARMPAY_FUZZ_SEED ?? 20261130);
/** Runs of a property, scaled to what one run costs. */
const runs = (scale = 1) => ({ numRuns: Math.max(1, Math.round(RUNS * scale)), seed: SEED });

/** Calls `f`; passes if it returns or throws one of `allowed`, fails (rethrows) on anything else. */
function refusesCleanly(f: () => unknown, ...allowed: (new (...a: never[]) => Error)[]): boolean {
  try {
    f();
    return true;
  } catch (e) {
    if (allowed.some((k) => e instanceof k)) return true;
    throw e;
  }
}

/** A mutation of `b`: bits flipped, bytes overwritten, cut, grown or spliced. */
const mutation = (b: Uint8Array): fc.Arbitrary<Buffer> =>
  fc
    .oneof(
      fc.record({ k: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
      fc.record({ k: fc.constant('set' as const), at: fc.nat(), v: fc.integer({ min: 0, max: 255 }) }),
      fc.record({ k: fc.constant('cut' as const), at: fc.nat() }),
      fc.record({ k: fc.constant('grow' as const), more: fc.uint8Array({ minLength: 1, maxLength: 64 }) }),
      fc.record({ k: fc.constant('splice' as const), at: fc.nat(), more: fc.uint8Array({ maxLength: 32 }) }),
    )
    .map((m) => {
      const out = Buffer.from(b);
      const at = b.length === 0 ? 0 : ('at' in m ? m.at : 0) % b.length;
      switch (m.k) {
        case 'flip':
          if (out.length > 0) out[at] ^= 1 << m.bit;
          return out;
        case 'set':
          if (out.length > 0) out[at] = m.v;
          return out;
        case 'cut':
          return out.subarray(0, at);
        case 'grow':
          return Buffer.concat([out, m.more]);
        case 'splice':
          return Buffer.concat([out.subarray(0, at), m.more, out.subarray(at)]);
      }
    });

describe('fuzz: frames and the Noise link', () => {
  test('frames split anywhere come out whole and in order; a bad length is PEER_PROTOCOL, nothing else', () => {
    const max = 4096;
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ minLength: 1, maxLength: 600 }), { maxLength: 12 }), fc.array(fc.nat({ max: 5000 }), { maxLength: 20 }), (bodies, cuts) => {
        const stream = Buffer.concat(bodies.map((b) => Buffer.concat([Buffer.from([b.length >>> 24, (b.length >>> 16) & 255, (b.length >>> 8) & 255, b.length & 255]), b])));
        const d = new FrameDecoder(max);
        const got: Buffer[] = [];
        let from = 0;
        for (const at of [...cuts.map((c) => c % (stream.length + 1)).sort((a, b) => a - b), stream.length]) {
          d.push(stream.subarray(from, Math.max(from, at)));
          from = Math.max(from, at);
          for (let f = d.next(); f !== undefined; f = d.next()) got.push(Buffer.from(f));
        }
        expect(got).toEqual(bodies.map((b) => Buffer.from(b)));
        expect(d.midFrame).toBe(false);
      }),
      runs(),
    );
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 10 }), (chunks) => {
        const d = new FrameDecoder(max);
        try {
          for (const c of chunks) {
            d.push(Buffer.from(c));
            while (d.next() !== undefined);
          }
        } catch (e) {
          expect(e).toBeInstanceOf(SwarmpayError);
          expect((e as SwarmpayError).code).toBe('PEER_PROTOCOL');
          // Judged from the header alone: never more than a header's worth read past the last frame.
          expect(HEADER_LEN).toBe(4);
        }
      }),
      runs(),
    );
  });

  const handshake = () => {
    const a = generateStaticKey();
    const b = generateStaticKey();
    return { i: new HandshakeState('initiator', a, Buffer.from('swarmpay')), r: new HandshakeState('responder', b, Buffer.from('swarmpay')) };
  };

  test('a handshake message changed in any way makes the handshake fail (PEER_PROTOCOL or PEER_AUTH_FAILED), at that message or the next; an untouched one completes', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 }), fc.boolean(), fc.gen(), (which, untouched, gen) => {
        const { i, r } = handshake();
        const turns: [HandshakeState, HandshakeState][] = [
          [i, r],
          [r, i],
          [i, r],
        ];
        let changed = false;
        try {
          for (const [n, [from, to]] of turns.entries()) {
            const m = from.writeMessage(Buffer.alloc(0));
            const sent = n === which && !untouched ? gen(mutation, m) : m;
            changed ||= !sent.equals(m);
            to.readMessage(sent);
          }
        } catch (e) {
          // The first message travels in the clear: a change to it shows when the hashes part, at the second.
          expect(changed).toBe(true);
          expect(['PEER_PROTOCOL', 'PEER_AUTH_FAILED']).toContain((e as SwarmpayError).code);
          return;
        }
        expect(changed).toBe(false);
        expect(i.finished && r.finished).toBe(true);
        expect(i.handshakeHash).toEqual(r.handshakeHash);
      }),
      runs(),
    );
  });

  test('a transport message changed in any way fails authentication; the untouched ones after it are still read in order', () => {
    const { i, r } = handshake();
    r.readMessage(i.writeMessage(Buffer.alloc(0)));
    i.readMessage(r.writeMessage(Buffer.alloc(0)));
    r.readMessage(i.writeMessage(Buffer.alloc(0)));
    const send: CipherState = i.split().send;
    const receive: CipherState = r.split().receive;
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.gen(), (plain, gen) => {
        const c = send.encryptWithAd(Buffer.alloc(0), plain);
        const bad = gen(mutation, c);
        if (!bad.equals(c)) {
          let e: unknown = null;
          try {
            receive.decryptWithAd(Buffer.alloc(0), bad);
          } catch (x) {
            e = x;
          }
          expect(['PEER_PROTOCOL', 'PEER_AUTH_FAILED']).toContain((e as SwarmpayError | null)?.code);
        }
        // A refused message does not move the nonce: the genuine one still reads.
        expect(receive.decryptWithAd(Buffer.alloc(0), c)).toEqual(Buffer.from(plain));
      }),
      runs(),
    );
  });
});

describe('fuzz: protocol messages and offers', () => {
  const sig = 'ab'.repeat(64);
  const channelMessages: Message[] = [
    { t: 'hello', id: '0123456789abcdef' },
    { t: 'ack', id: '0123456789abcdef', seq: 42 },
    { t: 'known?', id: '0123456789abcdef', ids: ['a', 'b'] },
    { t: 'state', id: '0123456789abcdef', seq: 7, cumulative: 700n, sig, confirmations: 1, status: 'open' },
    { t: 'error', code: 'X', message: 'y' },
  ];

  test('channel messages: a mutation of a valid message, or any JSON, is read or refused as PEER_PROTOCOL', () => {
    fc.assert(
      fc.property(fc.constantFrom(...channelMessages), fc.gen(), (m, gen) => {
        const bytes = gen(mutation, encodeMessage(m));
        refusesCleanly(() => parseMessage(bytes), SwarmpayError);
        try {
          parseMessage(bytes);
        } catch (e) {
          expect((e as SwarmpayError).code).toBe('PEER_PROTOCOL');
        }
      }),
      runs(),
    );
    fc.assert(
      fc.property(fc.oneof(fc.jsonValue(), fc.record({ v: fc.constant(2), t: fc.constantFrom('hello', 'open', 'accept', 'state', 'ack', 'known?', 'known', 'closed', 'error', 'close', 'funding'), x: fc.jsonValue() })), (v) => {
        refusesCleanly(() => parseMessage(Buffer.from(JSON.stringify(v) ?? 'null')), SwarmpayError);
      }),
      runs(),
    );
  });

  test('escrow messages: a mutation of a valid message is read or refused as PEER_PROTOCOL', () => {
    const valid = [encodeEscrowMessage({ t: 'get', id: null, nonce: randomBytes(32) }), encodeEscrowMessage({ t: 'chunk', i: 0, data: randomBytes(40) }), encodeEscrowMessage({ t: 'taken', id: '0123456789abcdef' })];
    fc.assert(
      fc.property(fc.constantFrom(...valid), fc.gen(), (m, gen) => {
        try {
          parseEscrowMessage(gen(mutation, m));
        } catch (e) {
          expect(e).toBeInstanceOf(SwarmpayError);
          expect((e as SwarmpayError).code).toBe('PEER_PROTOCOL');
        }
      }),
      runs(),
    );
  });

  test('offers and acceptances: any field replaced by any JSON is read or refused as a SwarmpayError', () => {
    const seller = randomBytes(32);
    const { body } = draftOffer({ id: '0123456789abcdef', network: 'regtest', name: 'item.bin', item: randomBytes(100), price: 5000n, timeout: { min: 10, max: 1000 }, confirmations: 1, seller: Buffer.from('02'.padEnd(66, '1'), 'hex'), expires: new Date(Date.now() + 3_600_000) });
    const offer = JSON.parse(JSON.stringify(signOffer(body, seller))) as Record<string, Json>;
    const keys = Object.keys(offer);
    fc.assert(
      fc.property(fc.constantFrom(...keys), fc.jsonValue(), (k, v) => {
        refusesCleanly(() => parseOffer({ ...offer, [k]: v as Json }), SwarmpayError);
        refusesCleanly(() => parseAcceptance({ offer: offer.id ?? null, [k]: v as Json }), SwarmpayError);
      }),
      runs(),
    );
    fc.assert(fc.property(fc.jsonValue(), (v) => refusesCleanly(() => parseOffer(v), SwarmpayError) && refusesCleanly(() => parseAcceptance(v), SwarmpayError)), runs());
  });
});

describe('fuzz: the TPM client reads whatever a TPM (or something posing as one) answers', () => {
  test('TPM structures from any bytes: read or MarshalError', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 400 }), (b) => {
        const buf = Buffer.from(b);
        for (const read of [readPublic, (r: Reader) => readAttest(r), readSignature, readPcrSelections]) refusesCleanly(() => read(new Reader(buf)), MarshalError);
      }),
      runs(),
    );
  });

  test('a command answered with any bytes: a result, a TpmError or TPM_PROTOCOL, nothing else', async () => {
    // A transport that answers with the fuzzer's bytes: the fault is a TPM (or a man in the
    // middle) answering garbage, which a real TPM cannot be made to show.
    const commands: Command<unknown>[] = [GetCapability(TPM_CAP.TPM_PROPERTIES, 0x100, 8), PCR_Read([{ hash: TPM_ALG.SHA256, pcrs: [0, 1] }]), ReadPublic(0x81000001), StartAuthSession(TPM_SE.POLICY, randomBytes(16))];
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...commands.keys()), fc.uint8Array({ maxLength: 300 }), fc.boolean(), async (c, body, framed) => {
        // Half the answers carry a well-formed header (tag, the right size, code 0) over fuzzed bytes.
        const answer = framed ? Buffer.concat([Buffer.from([0x80, 0x01]), Buffer.alloc(4), Buffer.alloc(4), body]) : Buffer.from(body);
        if (framed) answer.writeUInt32BE(answer.length, 2);
        const t = { describe: 'fuzz', send: async () => answer, close: async () => undefined };
        try {
          await execute(t, commands[c]!);
        } catch (e) {
          if (e instanceof TpmError) return;
          expect(e).toBeInstanceOf(SwarmpayError);
          expect((e as SwarmpayError).code).toBe('TPM_PROTOCOL');
        }
      }),
      runs(),
    );
  });
});

describe('fuzz: journals', () => {
  test('a journal damaged anywhere, any number of bytes: read whole, or refused; never read as fewer records', () => {
    const tmp = tempDir();
    const key = randomBytes(32);
    const file = path.join(tmp.dir, 'j', 'fuzz.journal');
    try {
      mkdirSync(path.dirname(file), { recursive: true });
      const records: Json[] = Array.from({ length: 6 }, (_, i) => ({ seq: i, ids: ['x'.repeat(i * 3)] }));
      const { journal } = Journal.open(file, 'fuzz', key);
      journal.append(records.slice(0, 3));
      journal.append(records.slice(3));
      const head = journal.head;
      journal.close();
      const clean = readFileSync(file);
      fc.assert(
        fc.property(fc.array(fc.record({ at: fc.nat(), v: fc.integer({ min: 0, max: 255 }) }), { minLength: 1, maxLength: 8 }), (hits) => {
          const buf = Buffer.from(clean);
          for (const h of hits) buf[h.at % buf.length] = h.v;
          if (buf.equals(clean)) return;
          writeFileSync(file, buf);
          try {
            // Whatever it reads must be every record: the damage was not in the file's meaning.
            expect(Journal.read(file, 'fuzz', key, head).records).toEqual(records);
          } catch (e) {
            expect(e).toBeInstanceOf(SwarmpayError);
            expect(['KEYSTORE_CORRUPT', 'ROLLBACK_DETECTED']).toContain((e as SwarmpayError).code);
          }
        }),
        runs(),
      );
    } finally {
      tmp.remove();
    }
  });
});
