/**
 * A fee rate, held in satoshis per 1000 virtual bytes (sat/kvB): Bitcoin Core's and btcd's
 * own granularity, so rates such as 2.5 or 1.125 sat/vB are exact. It is a class, not a
 * bigint, so that no code multiplies a rate by a size by hand: feeFor is the one place a
 * fee is computed from a rate, and it rounds up, so that a transaction always meets its rate.
 * Text and JSON speak sat/vB, the unit operators and block explorers use.
 */
import { SwarmpayError } from '../errors.js';

/** sat/kvB in one sat/vB. */
const PER_VB = 1000n;
/** The finest rate: 0.001 sat/vB, one sat/kvB. */
export const FEE_RATE_DECIMALS = 3;

export class FeeRate {
  private constructor(readonly satPerKvb: bigint) {}

  static ofSatPerKvb(satPerKvb: bigint): FeeRate {
    if (satPerKvb < 0n) throw new SwarmpayError('INTERNAL', `a fee rate of ${satPerKvb} sat/kvB`);
    return new FeeRate(satPerKvb);
  }

  static ofSatPerVb(satPerVb: bigint): FeeRate {
    return FeeRate.ofSatPerKvb(satPerVb * PER_VB);
  }

  /** The rate `fee` pays for `vsize`, rounded down to whole sat/kvB, as a node measures it. */
  static paidBy(fee: bigint, vsize: bigint): FeeRate {
    return FeeRate.ofSatPerKvb((fee * PER_VB) / vsize);
  }

  /**
   * A rate written in sat/vB: digits, and at most three decimals after a dot ("2", "2.5",
   * "1.125"). No sign, exponent, hex or comma: nothing is guessed. Bounds are the policy's
   * (checkFeeRate); this is only the notation.
   */
  static parse(text: string): FeeRate {
    const s = text.trim();
    const m = /^([0-9]{1,20})(?:\.([0-9]+))?$/.exec(s);
    if (m === null) throw notARate(text, hintFor(s));
    // Zeros at the end say nothing: "2.5000" is 2.5.
    const frac = (m[2] ?? '').replace(/0+$/, '');
    if (frac.length > FEE_RATE_DECIMALS) {
      throw notARate(text, `a fee rate has at most ${FEE_RATE_DECIMALS} decimals (the finest rate is 0.001 sat/vB), for example 2.125`);
    }
    return new FeeRate(BigInt(m[1]!) * PER_VB + BigInt(frac.padEnd(FEE_RATE_DECIMALS, '0')));
  }

  /** The least rate whose feeFor(vsize) is at least `fee`: feeFor's inverse, as a bump's hint names it. */
  static leastPaying(fee: bigint, vsize: bigint): FeeRate {
    // ceil(r * vsize / 1000) >= fee exactly when r * vsize > (fee - 1) * 1000.
    return FeeRate.ofSatPerKvb(((fee - 1n) * PER_VB) / vsize + 1n);
  }

  /** The least fee that pays this rate for `vsize` vbytes: rounded up, so fee / vsize >= the rate. */
  feeFor(vsize: bigint): bigint {
    return (this.satPerKvb * vsize + PER_VB - 1n) / PER_VB;
  }

  /** This rate times num/den, rounded up to the finest step: a scaled rate never falls short. */
  scaled(num: bigint, den: bigint): FeeRate {
    return FeeRate.ofSatPerKvb((this.satPerKvb * num + den - 1n) / den);
  }

  /** The least rate above this one, by the finest step (0.001 sat/vB). */
  justAbove(): FeeRate {
    return new FeeRate(this.satPerKvb + 1n);
  }

  compare(other: FeeRate): -1 | 0 | 1 {
    return this.satPerKvb < other.satPerKvb ? -1 : this.satPerKvb > other.satPerKvb ? 1 : 0;
  }

  static max(a: FeeRate, b: FeeRate): FeeRate {
    return a.compare(b) >= 0 ? a : b;
  }

  /** sat/vB in decimal, without trailing zeros: "2", "2.5", "0.001". */
  toString(): string {
    const whole = this.satPerKvb / PER_VB;
    const frac = (this.satPerKvb % PER_VB).toString().padStart(FEE_RATE_DECIMALS, '0').replace(/0+$/, '');
    return frac === '' ? whole.toString() : `${whole}.${frac}`;
  }

  /**
   * JSON: a number of sat/vB (2.5), so that a whole rate prints as the same integer as before
   * fractional rates. Exact: at most three decimals, far below a double's precision at these sizes.
   */
  toJSON(): number {
    return Number(this.toString());
  }
}

function notARate(text: string, hint: string): SwarmpayError {
  return new SwarmpayError('INVALID_AMOUNT', `fee rate "${text}" is not a number of sat/vB`, { hint });
}

function hintFor(s: string): string {
  if (s.startsWith('-')) return 'a fee rate cannot be negative';
  if (/^0x/i.test(s)) return 'give the rate in decimal sat/vB, for example 2.5';
  if (/[eE]/.test(s)) return 'write the rate out without an exponent, for example 2.5';
  if (s.includes(',')) return 'decimals take a dot, for example 2.5';
  return 'give a rate in sat/vB, for example 5 or 2.5';
}

/** Above this, a fee rate is almost surely a typo: 1000 sat/vB. */
export const MAX_FEE_RATE = FeeRate.ofSatPerVb(1000n);
/**
 * Below this, btcd (1000 sat/kB) does not relay, nor does Bitcoin Core before 29.1: 1 sat/vB.
 * It is also the incremental relay fee a replacement pays for its own size (BIP125 rule 4).
 */
export const MIN_RELAY_FEE_RATE = FeeRate.ofSatPerVb(1n);

/** Checks a fee rate a user asked for against relay minimum and the safety cap. */
export function checkFeeRate(rate: FeeRate): FeeRate {
  if (rate.compare(MIN_RELAY_FEE_RATE) < 0) {
    throw new SwarmpayError('INVALID_AMOUNT', `fee rate ${rate} sat/vB is below the relay minimum of ${MIN_RELAY_FEE_RATE} sat/vB`, {
      hint: `give --fee-rate ${MIN_RELAY_FEE_RATE} or more`,
    });
  }
  if (rate.compare(MAX_FEE_RATE) > 0) {
    throw new SwarmpayError('FEE_TOO_HIGH', `fee rate ${rate} sat/vB is above the safety cap of ${MAX_FEE_RATE} sat/vB`, {
      hint: 'fee rates are in sat/vB; check for an extra digit',
    });
  }
  return rate;
}

/** A fee rate as text in sat/vB ("2", "2.5", up to 3 decimals), within the relay minimum and the safety cap. */
export function parseFeeRate(text: string): FeeRate {
  return checkFeeRate(FeeRate.parse(text));
}
