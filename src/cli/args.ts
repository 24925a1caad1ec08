/** Parsers for command-line arguments; each failure is a usage error that names the argument. */
import { SwarmpayError } from '../errors.js';
import { parseFeeRate, type FeeRate } from '../bitcoin/fee-rate.js';
import type { Environment } from '../api/environment.js';

export function parseCount(text: string, what: string, min: number, max: number): number {
  if (!/^[0-9]+$/.test(text.trim())) throw new SwarmpayError('USAGE', `${what} "${text}" is not a whole number`, { hint: `give a number from ${min} to ${max}` });
  const n = Number(text.trim());
  if (n < min || n > max) throw new SwarmpayError('USAGE', `${what} ${n} is out of range`, { hint: `give a number from ${min} to ${max}` });
  return n;
}

/** A fee rate in sat/vB, up to 3 decimals, within the relay minimum and the safety cap. */
export { parseFeeRate };

/** A PCR list such as "7,16" (SHA-256 bank, PCRs 0-23); "" for none. */
export function parsePcrs(text: string): number[] {
  if (text.trim() === '') return [];
  const pcrs = text.split(',').map((p) => p.trim());
  for (const p of pcrs) {
    if (!/^[0-9]{1,2}$/.test(p) || Number(p) > 23) throw new SwarmpayError('USAGE', `"${p}" is not a PCR (0-23)`, { hint: 'give PCRs as a list, for example --pcrs 7,16' });
  }
  return [...new Set(pcrs.map(Number))].sort((a, b) => a - b);
}

/** A nonce in hex: 1 to 64 bytes (a TPM2B_DATA holds at most a SHA-512 digest). */
export function parseNonce(text: string): Buffer {
  const t = text.trim().toLowerCase().replace(/^0x/, '');
  if (!/^([0-9a-f]{2}){1,64}$/.test(t)) throw new SwarmpayError('USAGE', `--nonce "${text}" is not 1 to 64 bytes of hex`, { hint: 'give the verifier\'s nonce in hex, e.g. --nonce $(openssl rand -hex 32)' });
  return Buffer.from(t, 'hex');
}

/** --fee-rate if given, else the environment's default (SWARMPAY_FEE_RATE, swarmpay.conf, 2 on regtest), else FEE_RATE_REQUIRED. */
export function feeRateFor(env: Environment, given: string | undefined): FeeRate {
  return given !== undefined ? parseFeeRate(given) : env.defaultFeeRate();
}
