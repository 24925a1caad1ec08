/** Fee rates a user gives, checked without bitcoinjs: the CLI parses them before it loads the wallet. */
import { SwarmpayError } from '../errors.js';

/** Above this, a fee rate is almost surely a typo (sat/vB). */
export const MAX_FEE_RATE = 1000n;
/** Below this, nodes with default policy do not relay (sat/vB). */
export const MIN_RELAY_FEE_RATE = 1n;

/** Checks a fee rate a user asked for against relay minimum and the safety cap. */
export function checkFeeRate(rate: bigint): bigint {
  if (rate < MIN_RELAY_FEE_RATE) {
    throw new SwarmpayError('INVALID_AMOUNT', `fee rate ${rate} sat/vB is below the relay minimum of ${MIN_RELAY_FEE_RATE} sat/vB`, {
      hint: 'give --fee-rate 1 or more',
    });
  }
  if (rate > MAX_FEE_RATE) {
    throw new SwarmpayError('FEE_TOO_HIGH', `fee rate ${rate} sat/vB is above the safety cap of ${MAX_FEE_RATE} sat/vB`, {
      hint: 'fee rates are in sat/vB; check for an extra digit',
    });
  }
  return rate;
}
