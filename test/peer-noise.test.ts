/**
 * The Noise layer on its own: the published Noise_XX_25519_ChaChaPoly_SHA256 vectors (from
 * cacophony and noise-c, with their fixed ephemeral keys), the nonce rules, the keys, and
 * the frame decoder's limits.
 */
import { createCipheriv } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { FrameDecoder, frameBuffer, HEADER_LEN } from '../src/peer/frames.js';
import { generateStaticKey, parsePeerKey, staticKeyFromPrivate } from '../src/peer/keys.js';
import { CipherState, HandshakeState, TAG_LEN } from '../src/peer/noise.js';
import { thrown } from './helpers/expect.js';

interface Vector {
  source: string;
  init_prologue: string;
  init_static: string;
  init_ephemeral: string;
  resp_prologue: string;
  resp_static: string;
  resp_ephemeral: string;
  handshake_hash: string;
  messages: { payload: string; ciphertext: string }[];
}
const file = JSON.parse(readFileSync(new URL('./vectors/noise-xx.json', import.meta.url), 'utf8')) as { protocol_name: string; vectors: Vector[] };
const hex = (s: string) => Buffer.from(s, 'hex');
const key = (s: string) => staticKeyFromPrivate(hex(s));


describe(file.protocol_name, () => {
  test.each(file.vectors.map((v) => ({ ...v, from: v.source.split(' ')[0] })))('the vector from $from', (v) => {
    const init = new HandshakeState('initiator', key(v.init_static), hex(v.init_prologue), key(v.init_ephemeral));
    const resp = new HandshakeState('responder', key(v.resp_static), hex(v.resp_prologue), key(v.resp_ephemeral));
    const [m1, m2, m3, ...transport] = v.messages;

    expect(init.writeMessage(hex(m1.payload)).toString('hex')).toBe(m1.ciphertext);
    expect(resp.readMessage(hex(m1.ciphertext)).toString('hex')).toBe(m1.payload);
    expect(resp.writeMessage(hex(m2.payload)).toString('hex')).toBe(m2.ciphertext);
    expect(init.readMessage(hex(m2.ciphertext)).toString('hex')).toBe(m2.payload);
    expect(init.writeMessage(hex(m3.payload)).toString('hex')).toBe(m3.ciphertext);
    expect(resp.readMessage(hex(m3.ciphertext)).toString('hex')).toBe(m3.payload);

    expect(init.finished && resp.finished).toBe(true);
    expect(init.handshakeHash.toString('hex')).toBe(v.handshake_hash);
    expect(resp.handshakeHash.toString('hex')).toBe(v.handshake_hash);
    expect(init.remoteStatic).toEqual(key(v.resp_static).publicKey);
    expect(resp.remoteStatic).toEqual(key(v.init_static).publicKey);

    const i = init.split();
    const r = resp.split();
    // Turns keep alternating after the handshake: the responder sends the fourth message.
    transport.forEach((m, n) => {
      const [from, to] = n % 2 === 0 ? [r, i] : [i, r];
      const ct = from.send.encryptWithAd(Buffer.alloc(0), hex(m.payload));
      expect(ct.toString('hex')).toBe(m.ciphertext);
      expect(to.receive.decryptWithAd(Buffer.alloc(0), ct).toString('hex')).toBe(m.payload);
    });
  });

  test('a different prologue fails the handshake at message 2', () => {
    const v = file.vectors[0];
    const init = new HandshakeState('initiator', key(v.init_static), Buffer.from('swarmpay/1'));
    const resp = new HandshakeState('responder', key(v.resp_static), Buffer.from('swarmpay/2'));
    resp.readMessage(init.writeMessage(Buffer.alloc(0)));
    expect(thrown(() => init.readMessage(resp.writeMessage(Buffer.alloc(0)))).code).toBe('PEER_AUTH_FAILED');
  });

  test('a short handshake message is a protocol error, not a crash', () => {
    const resp = new HandshakeState('responder', generateStaticKey(), Buffer.alloc(0));
    const e = thrown(() => resp.readMessage(Buffer.alloc(31)));
    expect(e.code).toBe('PEER_PROTOCOL');
    expect(e.message).toMatch(/handshake message 1 of 31 bytes/);
  });

  test('a low-order ephemeral key from the peer is refused', () => {
    const resp = new HandshakeState('responder', generateStaticKey(), Buffer.alloc(0));
    resp.readMessage(Buffer.alloc(32)); // the all-zero point
    expect(thrown(() => resp.writeMessage(Buffer.alloc(0))).code).toBe('PEER_PROTOCOL');
  });

  test('messages out of turn are a bug, not a state change', () => {
    const init = new HandshakeState('initiator', generateStaticKey(), Buffer.alloc(0));
    expect(thrown(() => init.readMessage(Buffer.alloc(32))).code).toBe('INTERNAL');
  });
});

describe('CipherState', () => {
  const pair = () => [new CipherState(Buffer.alloc(32, 7)), new CipherState(Buffer.alloc(32, 7))];
  const ad = Buffer.alloc(0);

  test('nonces advance per message: a replayed or reordered ciphertext fails', () => {
    const [a, b] = pair();
    const c0 = a.encryptWithAd(ad, Buffer.from('zero'));
    const c1 = a.encryptWithAd(ad, Buffer.from('one'));
    expect(thrown(() => b.decryptWithAd(ad, c1)).code).toBe('PEER_AUTH_FAILED');
    expect(b.decryptWithAd(ad, c0).toString()).toBe('zero'); // a failure did not consume the nonce
    expect(thrown(() => b.decryptWithAd(ad, c0)).code).toBe('PEER_AUTH_FAILED');
    expect(b.decryptWithAd(ad, c1).toString()).toBe('one');
  });

  test('a ciphertext shorter than its tag is refused', () => {
    const [, b] = pair();
    expect(thrown(() => b.decryptWithAd(ad, Buffer.alloc(TAG_LEN - 1))).code).toBe('PEER_PROTOCOL');
  });

  test('the nonce is 4 zero bytes and n as 64-bit little-endian, across the 32-bit carry', () => {
    const [a, b] = pair();
    a.setNonce(0xffffffffn);
    b.setNonce(0xffffffffn);
    for (const n of ['00000000ffffffff00000000', '000000000000000001000000', '000000000100000001000000']) {
      const pt = Buffer.from(`nonce ${n}`);
      const c = createCipheriv('chacha20-poly1305', Buffer.alloc(32, 7), hex(n), { authTagLength: TAG_LEN });
      const expected = Buffer.concat([c.update(pt), c.final(), c.getAuthTag()]);
      const ct = a.encryptWithAd(ad, pt);
      expect(ct).toEqual(expected);
      expect(b.decryptWithAd(ad, ct)).toEqual(pt);
    }
  });

  test('nonce 2^64-1 is never used: the cipher is finished', () => {
    const [a, b] = pair();
    a.setNonce(2n ** 64n - 2n);
    b.setNonce(2n ** 64n - 2n);
    expect(b.decryptWithAd(ad, a.encryptWithAd(ad, Buffer.from('last'))).toString()).toBe('last');
    const e = thrown(() => a.encryptWithAd(ad, Buffer.from('one too many')));
    expect(e.code).toBe('PEER_PROTOCOL');
    expect(e.message).toMatch(/2\^64-1 nonces/);
    expect(thrown(() => b.decryptWithAd(ad, Buffer.alloc(20))).code).toBe('PEER_PROTOCOL');
  });
});

describe('keys', () => {
  test('the public key of a private key is deterministic and X25519 (RFC 7748, section 6.1)', () => {
    const alice = staticKeyFromPrivate(hex('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a'));
    expect(alice.publicKey.toString('hex')).toBe('8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a');
    expect(staticKeyFromPrivate(alice.privateKey)).toEqual(alice);
  });

  test('a private key must be 32 bytes', () => {
    expect(thrown(() => staticKeyFromPrivate(Buffer.alloc(31))).code).toBe('INTERNAL');
  });

  test('--peer-key takes 64 hex characters', () => {
    const k = generateStaticKey().publicKey;
    expect(parsePeerKey(k.toString('hex').toUpperCase())).toEqual(k);
    for (const bad of ['', 'zz'.repeat(32), k.toString('hex').slice(2), `${k.toString('hex')}00`]) expect(thrown(() => parsePeerKey(bad)).code).toBe('USAGE');
  });
});

describe('FrameDecoder', () => {
  const frame = (body: Buffer) => {
    const f = frameBuffer(body.length);
    body.copy(f, HEADER_LEN);
    return f;
  };

  test('frames split and joined across chunks at every byte come out whole', () => {
    const bodies = [Buffer.from('a'), Buffer.alloc(300, 2), Buffer.from('the end')];
    const stream = Buffer.concat(bodies.map(frame));
    for (let cut = 1; cut < stream.length; cut += 1) {
      const d = new FrameDecoder(1024);
      const out: string[] = [];
      for (let at = 0; at < stream.length; at += cut) {
        d.push(stream.subarray(at, at + cut));
        for (let f = d.next(); f; f = d.next()) out.push(f.toString('hex'));
      }
      expect(out).toEqual(bodies.map((b) => b.toString('hex')));
      expect(d.midFrame).toBe(false);
    }
  });

  test('a length over the cap, or zero, fails on the header alone', () => {
    for (const len of [1025, 0, 0xffffffff]) {
      const d = new FrameDecoder(1024);
      const header = Buffer.alloc(4);
      header.writeUInt32BE(len);
      d.push(header);
      const e = thrown(() => d.next());
      expect(e.code).toBe('PEER_PROTOCOL');
      expect(e.details).toEqual({ frameLength: len, maxFrame: 1024 });
    }
  });

  test('a partial header or body is reported as mid-frame', () => {
    const d = new FrameDecoder(1024);
    d.push(Buffer.from([0, 0]));
    expect(d.next()).toBeUndefined();
    expect(d.midFrame).toBe(true);
    d.push(Buffer.from([0, 5, 1]));
    expect(d.next()).toBeUndefined();
    expect(d.midFrame).toBe(true);
  });
});
