/**
 * Noise_XX_25519_ChaChaPoly_SHA256, as the Noise Protocol Framework (revision 34) defines
 * it, section by section: CipherState (5.1), SymmetricState (5.2), HandshakeState (5.3)
 * with the XX pattern (7.5). Pure state machines: no I/O, no timers; the link feeds them.
 */
import { createCipheriv, createDecipheriv, createHash, createHmac } from 'node:crypto';
import { SwarmpayError } from '../errors.js';
import { dh, generateStaticKey, KEY_LEN, type StaticKey } from './keys.js';

export const TAG_LEN = 16;
const EMPTY = Buffer.alloc(0);
/** Exactly HASHLEN (32) bytes long, so h starts as the name itself, unhashed (5.2, InitializeSymmetric). */
const PROTOCOL_NAME = 'Noise_XX_25519_ChaChaPoly_SHA256';

export type Role = 'initiator' | 'responder';

const sha256 = (a: Uint8Array, b: Uint8Array) => createHash('sha256').update(a).update(b).digest();
const hmac = (key: Uint8Array, ...data: Uint8Array[]) => data.reduce((h, d) => h.update(d), createHmac('sha256', key)).digest();

/** HKDF with two outputs (section 4.3): HMAC-SHA256 chained, not RFC 5869's info/length form. */
function hkdf(chainingKey: Buffer, ikm: Uint8Array): [Buffer, Buffer] {
  const tempKey = hmac(chainingKey, ikm);
  const out1 = hmac(tempKey, Buffer.of(1));
  return [out1, hmac(tempKey, out1, Buffer.of(2))];
}

/** 5.1. A key and a 64-bit nonce; made only once there is a key, so "no key" is a null elsewhere, not a state here. */
export class CipherState {
  private readonly nonce = Buffer.alloc(12);
  // n as two 32-bit halves: exact up to 2^64-1 without a BigInt per message.
  private lo = 0;
  private hi = 0;

  constructor(private readonly k: Buffer) {}

  /** SetNonce(n), the spec's own entry point; the tests use it to reach the end of the nonce space. */
  setNonce(n: bigint): void {
    this.lo = Number(n & 0xffffffffn);
    this.hi = Number(n >> 32n);
  }

  /** ENCRYPT(k, n++, ad, plaintext) written into `out` at `offset`, so a caller's frame header can sit in front without a copy. */
  encryptInto(ad: Uint8Array, plaintext: Uint8Array, out: Buffer, offset: number): void {
    const c = createCipheriv('chacha20-poly1305', this.k, this.currentNonce(), { authTagLength: TAG_LEN });
    if (ad.length > 0) c.setAAD(ad, { plaintextLength: plaintext.length });
    const body = c.update(plaintext);
    body.copy(out, offset);
    c.final();
    c.getAuthTag().copy(out, offset + body.length);
    this.advance();
  }

  encryptWithAd(ad: Uint8Array, plaintext: Uint8Array): Buffer {
    const out = Buffer.allocUnsafe(plaintext.length + TAG_LEN);
    this.encryptInto(ad, plaintext, out, 0);
    return out;
  }

  /** DECRYPT(k, n++, ad, ciphertext); on failure n stays put (the link is closed anyway). */
  decryptWithAd(ad: Uint8Array, ciphertext: Buffer): Buffer {
    if (ciphertext.length < TAG_LEN) throw new SwarmpayError('PEER_PROTOCOL', `sent a ${ciphertext.length}-byte ciphertext, shorter than its ${TAG_LEN}-byte tag`);
    const bodyLen = ciphertext.length - TAG_LEN;
    const d = createDecipheriv('chacha20-poly1305', this.k, this.currentNonce(), { authTagLength: TAG_LEN });
    if (ad.length > 0) d.setAAD(ad, { plaintextLength: bodyLen });
    d.setAuthTag(ciphertext.subarray(bodyLen));
    const plaintext = d.update(ciphertext.subarray(0, bodyLen));
    try {
      d.final();
    } catch {
      throw new SwarmpayError('PEER_AUTH_FAILED', 'sent a message that failed authentication: it was altered, replayed, reordered or not encrypted for this link', {
        hint: 'something between the two peers is changing the traffic, or the peer is faulty; reconnect',
      });
    }
    this.advance();
    return plaintext;
  }

  /** 4 zero bytes, then n as 64-bit little-endian (section 12.3). n = 2^64-1 is reserved: reaching it ends the cipher. */
  private currentNonce(): Buffer {
    if (this.lo === 0xffffffff && this.hi === 0xffffffff) {
      throw new SwarmpayError('PEER_PROTOCOL', 'the link has used all 2^64-1 nonces of one direction and cannot carry another message', {
        hint: 'open a new link: it starts with fresh keys',
      });
    }
    this.nonce.writeUInt32LE(this.lo, 4);
    this.nonce.writeUInt32LE(this.hi, 8);
    return this.nonce;
  }

  private advance(): void {
    this.lo = (this.lo + 1) >>> 0;
    if (this.lo === 0) this.hi += 1;
  }
}

/** 5.2. The chaining key and handshake hash, and the CipherState once MixKey has run. */
class SymmetricState {
  private ck: Buffer;
  h: Buffer;
  private cs: CipherState | null = null;

  constructor() {
    this.h = Buffer.from(PROTOCOL_NAME);
    this.ck = this.h;
  }

  get hasKey(): boolean {
    return this.cs !== null;
  }

  mixKey(ikm: Uint8Array): void {
    const [ck, k] = hkdf(this.ck, ikm);
    this.ck = ck;
    this.cs = new CipherState(k);
  }

  mixHash(data: Uint8Array): void {
    this.h = sha256(this.h, data);
  }

  encryptAndHash(plaintext: Uint8Array): Buffer {
    const ciphertext = this.cs ? this.cs.encryptWithAd(this.h, plaintext) : Buffer.from(plaintext);
    this.mixHash(ciphertext);
    return ciphertext;
  }

  decryptAndHash(ciphertext: Buffer): Buffer {
    const plaintext = this.cs ? this.cs.decryptWithAd(this.h, ciphertext) : ciphertext;
    this.mixHash(ciphertext);
    return plaintext;
  }

  split(): [CipherState, CipherState] {
    const [k1, k2] = hkdf(this.ck, EMPTY);
    return [new CipherState(k1), new CipherState(k2)];
  }
}

type Token = 'e' | 's' | 'ee' | 'es' | 'se';
/** 7.5, XX:  -> e   <- e, ee, s, es   -> s, se */
const XX: readonly (readonly Token[])[] = [['e'], ['e', 'ee', 's', 'es'], ['s', 'se']];

/** 5.3, for XX only. Messages alternate, the initiator first; after the third, split(). */
export class HandshakeState {
  private readonly ss = new SymmetricState();
  private e: StaticKey | null;
  private re: Buffer | null = null;
  private rs: Buffer | null = null;
  private step = 0;

  /** `e` fixes the ephemeral key: only the test vectors do that. */
  constructor(
    private readonly role: Role,
    private readonly s: StaticKey,
    prologue: Uint8Array,
    e?: StaticKey,
  ) {
    this.e = e ?? null;
    this.ss.mixHash(prologue);
  }

  get finished(): boolean {
    return this.step === XX.length;
  }

  /** The peer's static public key, once its message carrying it has been read and authenticated. */
  get remoteStatic(): Buffer | null {
    return this.rs;
  }

  get handshakeHash(): Buffer {
    return this.ss.h;
  }

  writeMessage(payload: Uint8Array): Buffer {
    const out: Buffer[] = [];
    for (const token of this.turn(true)) {
      if (token === 'e') {
        this.e ??= generateStaticKey();
        out.push(this.e.publicKey);
        this.ss.mixHash(this.e.publicKey);
      } else if (token === 's') {
        out.push(this.ss.encryptAndHash(this.s.publicKey));
      } else {
        this.mixDh(token);
      }
    }
    out.push(this.ss.encryptAndHash(payload));
    return Buffer.concat(out);
  }

  /** Returns the message's payload. Throws a SwarmpayError if the message is short, or fails authentication. */
  readMessage(message: Buffer): Buffer {
    const n = this.step + 1;
    let at = 0;
    const take = (len: number) => {
      if (message.length - at < len) throw new SwarmpayError('PEER_PROTOCOL', `sent handshake message ${n} of ${message.length} bytes, too short to be one`);
      return message.subarray(at, (at += len));
    };
    for (const token of this.turn(false)) {
      if (token === 'e') {
        this.re = Buffer.from(take(KEY_LEN));
        this.ss.mixHash(this.re);
      } else if (token === 's') {
        this.rs = Buffer.from(this.ss.decryptAndHash(take(this.ss.hasKey ? KEY_LEN + TAG_LEN : KEY_LEN)));
      } else {
        this.mixDh(token);
      }
    }
    return this.ss.decryptAndHash(message.subarray(at));
  }

  /** Split(): the initiator sends with the first CipherState, the responder with the second. */
  split(): { send: CipherState; receive: CipherState } {
    if (!this.finished) throw new SwarmpayError('INTERNAL', 'split() before the handshake finished');
    const [c1, c2] = this.ss.split();
    return this.role === 'initiator' ? { send: c1, receive: c2 } : { send: c2, receive: c1 };
  }

  /** The tokens of the next message, which must be ours to write (or the peer's to read). */
  private turn(writing: boolean): readonly Token[] {
    const ours = this.step % 2 === (this.role === 'initiator' ? 0 : 1);
    if (this.finished || ours !== writing) throw new SwarmpayError('INTERNAL', `handshake message ${this.step + 1} ${writing ? 'written' : 'read'} out of turn`);
    return XX[this.step++];
  }

  /** es is always the initiator's e with the responder's s, se the reverse (7.1); each side picks its half. */
  private mixDh(token: 'ee' | 'es' | 'se'): void {
    const e = this.e!;
    const [mine, theirs] = token === 'ee' ? [e, this.re!] : (token === 'es') === (this.role === 'initiator') ? [e, this.rs!] : [this.s, this.re!];
    this.ss.mixKey(dh(mine.privateKey, theirs));
  }
}
