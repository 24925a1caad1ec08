import { SwarmpayError } from '../errors.js';

/** 21 million BTC in satoshis: no amount can be larger. */
export const MAX_MONEY = 2_100_000_000_000_000n;

/**
 * Parses an amount given by a user: a whole, positive number of satoshis in decimal digits.
 * Anything else (0, a sign, a fraction, an exponent, BTC units) is refused rather than guessed.
 */
export function parseSats(text: string, what = 'amount'): bigint {
  const s = text.trim();
  if (!/^[0-9]+$/.test(s)) {
    const hint = /^-/.test(s)
      ? 'amounts cannot be negative'
      : /[.,eE]/.test(s)
        ? 'amounts are whole satoshis (1 BTC = 100000000 sats), not fractions'
        : 'give a whole number of satoshis, for example 25000';
    throw new SwarmpayError('INVALID_AMOUNT', `${what} "${text}" is not a whole number of satoshis`, { hint });
  }
  const v = BigInt(s);
  if (v === 0n) throw new SwarmpayError('INVALID_AMOUNT', `${what} must be more than 0 sats`, { hint: 'give a positive number of satoshis' });
  if (v > MAX_MONEY) throw new SwarmpayError('INVALID_AMOUNT', `${what} ${s} sats is more than 21 million BTC`, { hint: 'check the amount: it is in satoshis, not BTC' });
  return v;
}

/** Formats satoshis as BTC with 8 decimals, for human output only. */
export function formatBtc(sats: bigint): string {
  const neg = sats < 0n;
  const a = neg ? -sats : sats;
  const whole = a / 100_000_000n;
  const frac = (a % 100_000_000n).toString().padStart(8, '0');
  return `${neg ? '-' : ''}${whole}.${frac}`;
}
