/** The binary payments frame (channel protocol v2): round trips, and every malformed frame is a ShapeError, never a crash. */
import fc from 'fast-check';
import { MAX_ID_BYTES, PaymentsWriter, readPayments } from '../src/channel/payments-codec.js';
import { ShapeError } from '../src/util/shape.js';

type Item = { kind: 'payment'; sats: number; pid: string | null } | { kind: 'state'; seq: number; cumulative: number; sig: Buffer };

const pid = fc.option(fc.stringMatching(/^[\x21-\x7e]{1,64}$/), { nil: null });
const item: fc.Arbitrary<Item> = fc.oneof(
  fc.record({ kind: fc.constant('payment' as const), sats: fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }), pid }),
  fc.record({ kind: fc.constant('state' as const), seq: fc.nat(), cumulative: fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }), sig: fc.uint8Array({ minLength: 64, maxLength: 64 }).map((b) => Buffer.from(b)) }),
);

function write(firstSeq: number, items: Item[]): Buffer {
  const w = new PaymentsWriter(1 << 20);
  let next = firstSeq;
  for (const it of items) {
    if (it.kind === 'payment') w.payment(next++, it.sats, it.pid);
    else w.state(next, it.seq, it.cumulative, it.sig);
  }
  return w.take();
}

function read(frame: Buffer): { firstSeq: number | null; items: Item[] } {
  const items: Item[] = [];
  let firstSeq: number | null = null;
  readPayments(frame, {
    payment: (seq, sats, p) => {
      firstSeq ??= seq;
      items.push({ kind: 'payment', sats, pid: p });
    },
    state: (seq, cumulative, sig) => items.push({ kind: 'state', seq, cumulative, sig: Buffer.from(sig) }),
  });
  return { firstSeq, items };
}

describe('payments frames', () => {
  test('what is written is read back, item for item, sequence numbers in order', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 40 }), fc.array(item, { minLength: 1, maxLength: 60 }), (firstSeq, items) => {
        const got = read(write(firstSeq, items));
        expect(got.items).toEqual(items);
        if (items.some((i) => i.kind === 'payment')) expect(got.firstSeq).toBe(firstSeq);
      }),
      { numRuns: 2000 },
    );
  });

  test('any bytes after the frame type either read or fail as a ShapeError: nothing else is thrown', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        try {
          read(Buffer.concat([Buffer.from([1]), bytes]));
        } catch (e) {
          expect(e).toBeInstanceOf(ShapeError);
        }
      }),
      { numRuns: 20000 },
    );
  });

  test.each([
    ['a payment of nothing', [0x00, 0x00], /pays nothing/],
    ['an id longer than 64 bytes', [0x01, 0x05, MAX_ID_BYTES + 1, ...Array(MAX_ID_BYTES + 1).fill(0x41)], /batch id of payment 0 is not 1 to 64 bytes/],
    ['an id of a control character', [0x01, 0x05, 0x01, 0x0a], /not printable/],
    ['an id that runs past the frame', [0x01, 0x05, 0x05, 0x41], /not 1 to 64 bytes/],
    ['a state cut short', [0x02, 0x01, 0x05, ...Array(63).fill(0)], /ends inside a signature/],
    ['a non-minimal varint', [0x00, 0x81, 0x00], /not minimally encoded/],
    ['a varint above 2^53', [0x00, ...Array(7).fill(0xff), 0x7f], /too large/],
    ['an unknown item', [0x07], /unknown item 7/],
  ])('%s is refused', (_what, items, why) => {
    expect(() => read(Buffer.from([1, 0, ...items]))).toThrow(why);
  });
});
