/**
 * Fractional fee rates (issue 15): FeeRate holds sat/kvB, computes every fee rounding up,
 * reads sat/vB with up to 3 decimals and nothing else, and prints whole rates as before.
 */
import fc from 'fast-check';
import { FeeRate } from '../src/bitcoin/fee-rate.js';
import { MAX_FEE_RATE, MIN_RELAY_FEE_RATE, parseFeeRate } from '../src/bitcoin/policy.js';
import { cpfpChildFee } from '../src/bitcoin/cpfp.js';
import { SwarmpayError } from '../src/errors.js';
import { nextBumpRate, settleFeeRate, MIN_SETTLE_FEE_RATE } from '../src/chain/fees.js';

const runs = { numRuns: Number(process.env.SWARMPAY_FUZZ_RUNS ?? 2000) };
/** Any rate a user may give (0.001 to 1000 sat/vB) and any size a transaction may have (1 vB to 100 kvB, standardness' most). */
const anyRate = fc.bigInt({ min: 1n, max: 1_000_000n }).map((kvb) => FeeRate.ofSatPerKvb(kvb));
const anySize = fc.bigInt({ min: 1n, max: 100_000n });

function refusal(f: () => unknown): SwarmpayError {
  try {
    f();
  } catch (e) {
    if (e instanceof SwarmpayError) return e;
    throw e;
  }
  throw new Error('not refused');
}

describe('FeeRate arithmetic', () => {
  test('a fee always meets its rate, and is the least fee that does: fee / vsize >= rate > (fee - 1) / vsize', () => {
    fc.assert(
      fc.property(anyRate, anySize, (rate, vsize) => {
        const fee = rate.feeFor(vsize);
        // Exactly, in integers: fee × 1000 >= rate(sat/kvB) × vsize, and one sat less would not be.
        expect(fee * 1000n).toBeGreaterThanOrEqual(rate.satPerKvb * vsize);
        expect((fee - 1n) * 1000n).toBeLessThan(rate.satPerKvb * vsize);
        // What a node measures (whole sat/kvB, rounded down) is never below the rate.
        expect(FeeRate.paidBy(fee, vsize).compare(rate)).toBeGreaterThanOrEqual(0);
      }),
      runs,
    );
  });

  test('whole rates give the same fees as before: rate × vsize', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 1n, max: 1000n }), anySize, (satPerVb, vsize) => {
        expect(FeeRate.ofSatPerVb(satPerVb).feeFor(vsize)).toBe(satPerVb * vsize);
      }),
      runs,
    );
  });

  test('1.5 sat/vB on 141 vB is 212 sats (211.5 rounded up); 2.25 on 110 vB is 248 (247.5 up)', () => {
    expect(FeeRate.parse('1.5').feeFor(141n)).toBe(212n);
    expect(FeeRate.parse('2.25').feeFor(110n)).toBe(248n);
    expect(FeeRate.parse('0.001').feeFor(1n)).toBe(1n);
  });

  test('a CPFP child lifts the pair to a fractional rate, and a replacing child outbids the old one exactly', () => {
    fc.assert(
      fc.property(anyRate, fc.bigInt({ min: 0n, max: 100_000n }), anySize, anySize, (rate, parentFee, parentVsize, childVsize) => {
        const fee = cpfpChildFee({ parentFee, parentVsize, childVsize, feeRate: rate });
        expect(FeeRate.paidBy(parentFee + fee, parentVsize + childVsize).compare(rate)).toBeGreaterThanOrEqual(0);
        expect(FeeRate.paidBy(fee, childVsize).compare(rate)).toBeGreaterThanOrEqual(0);
        // Replacing a child of that fee: BIP125's more fee by the relay fee of its own size, and a higher rate.
        const again = cpfpChildFee({ parentFee, parentVsize, childVsize, feeRate: rate, replacing: { fee, vsize: childVsize } });
        expect(again).toBeGreaterThanOrEqual(fee + MIN_RELAY_FEE_RATE.feeFor(childVsize));
        expect(FeeRate.paidBy(again, childVsize).compare(FeeRate.paidBy(fee, childVsize))).toBeGreaterThan(0);
      }),
      runs,
    );
  });
});

describe('rates from the node', () => {
  const node = (estimate: string | null) => ({ estimateFeeRate: async () => (estimate === null ? null : FeeRate.parse(estimate)) });

  test('a settling spend takes the estimate as precise as the node gives it, never below the floor', async () => {
    expect((await settleFeeRate(node('3.217'), MIN_SETTLE_FEE_RATE)).toString()).toBe('3.217');
    expect((await settleFeeRate(node('1.5'), MIN_SETTLE_FEE_RATE)).toString()).toBe('2');
    expect((await settleFeeRate(node(null), MIN_SETTLE_FEE_RATE)).toString()).toBe('2');
  });

  test('each automatic bump climbs a quarter above the last (from a whole rate an older record holds too), or to the estimate, within the cap', async () => {
    const next = async (last: string, estimate: string | null = null) => (await nextBumpRate(node(estimate), FeeRate.parse(last))).toString();
    expect(await next('12')).toBe('15');
    expect(await next('2')).toBe('2.5');
    expect(await next('2.5')).toBe('3.125');
    expect(await next('0.001')).toBe('0.002'); // never stalls
    expect(await next('2', '7.777')).toBe('7.777');
    expect(await next('900')).toBe('1000');
  });
});

describe('FeeRate scaled', () => {
  test('a scaled rate rounds up to the finest step, so it never falls short of rate × num / den', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: 10_000_000n }), fc.bigInt({ min: 1n, max: 100n }), fc.bigInt({ min: 1n, max: 100n }), (kvb, num, den) => {
        const r = FeeRate.ofSatPerKvb(kvb).scaled(num, den).satPerKvb;
        expect(r * den >= kvb * num && (r - 1n) * den < kvb * num).toBe(true);
      }),
      runs,
    );
  });
});

describe('FeeRate leastPaying', () => {
  test('is feeFor\'s inverse: the least rate whose fee for a size is at least the fee asked', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 1n, max: 10_000_000n }), fc.bigInt({ min: 1n, max: 100_000n }), (fee, vsize) => {
        const r = FeeRate.leastPaying(fee, vsize);
        expect(r.feeFor(vsize) >= fee && FeeRate.ofSatPerKvb(r.satPerKvb - 1n).feeFor(vsize) < fee).toBe(true);
      }),
      runs,
    );
  });
});

describe('FeeRate text', () => {
  test('reads sat/vB with up to 3 decimals, and prints it back without trailing zeros', () => {
    const cases: [string, bigint, string][] = [
      ['2', 2000n, '2'],
      ['2.5', 2500n, '2.5'],
      ['1.25', 1250n, '1.25'],
      ['1.125', 1125n, '1.125'],
      ['2.50', 2500n, '2.5'],
      ['0.001', 1n, '0.001'],
      [' 7.0 ', 7000n, '7'],
      ['1000', 1_000_000n, '1000'],
      // Zeros after the third decimal say nothing either: the value is exact.
      ['2.5000', 2500n, '2.5'],
      ['1.0000', 1000n, '1'],
    ];
    for (const [text, kvb, shown] of cases) {
      const r = FeeRate.parse(text);
      expect([text, r.satPerKvb, r.toString()]).toEqual([text, kvb, shown]);
    }
  });

  test('text round-trips, and JSON is the same number of sat/vB (a whole rate the same integer as before)', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: 10_000_000n }), (kvb) => {
        const r = FeeRate.ofSatPerKvb(kvb);
        expect(FeeRate.parse(r.toString()).satPerKvb).toBe(kvb);
        expect(JSON.stringify({ feeRate: r })).toBe(`{"feeRate":${r.toString()}}`);
      }),
      runs,
    );
    expect(JSON.stringify({ feeRate: FeeRate.ofSatPerVb(3n) })).toBe('{"feeRate":3}');
    expect(JSON.stringify({ feeRate: FeeRate.parse('2.25') })).toBe('{"feeRate":2.25}');
  });

  test('anything else is INVALID_AMOUNT with a hint: too many decimals names the limit; no sign, exponent, hex or comma', () => {
    const hints: [string, RegExp][] = [
      ['2.5001', /at most 3 decimals.*0\.001 sat\/vB/],
      ['1.0001', /at most 3 decimals/],
      ['-1', /cannot be negative/],
      ['1e3', /without an exponent/],
      ['0x10', /decimal/],
      ['2,5', /dot/],
      ['.5', /for example/],
      ['2.', /for example/],
      ['', /for example/],
      ['two', /for example/],
      ['Infinity', /for example/],
      ['NaN', /for example/],
      ['+2', /for example/],
      ['1_000', /for example/],
      ['٣', /for example/],
    ];
    for (const [text, hint] of hints) {
      const e = refusal(() => FeeRate.parse(text));
      expect([text, e.code, e.message]).toEqual([text, 'INVALID_AMOUNT', `fee rate "${text}" is not a number of sat/vB`]);
      expect(e.hint).toMatch(hint);
    }
  });

  test('parseFeeRate keeps the relay minimum (1 sat/vB, btcd\'s 1000 sat/kB) and the safety cap', () => {
    expect(parseFeeRate('1').toString()).toBe(MIN_RELAY_FEE_RATE.toString());
    expect(parseFeeRate('1000').toString()).toBe(MAX_FEE_RATE.toString());
    for (const low of ['0.999', '0.5', '0']) {
      const e = refusal(() => parseFeeRate(low));
      expect([low, e.code, e.message]).toEqual([low, 'INVALID_AMOUNT', `fee rate ${FeeRate.parse(low)} sat/vB is below the relay minimum of 1 sat/vB`]);
      expect(e.hint).toBe('give --fee-rate 1 or more');
    }
    for (const high of ['1000.001', '99999999999999999999']) expect(refusal(() => parseFeeRate(high)).code).toBe('FEE_TOO_HIGH');
  });
});
