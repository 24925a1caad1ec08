/**
 * What the spends that settle a contract (a channel's close, an escrow's claim) pay in
 * fees: the node's estimate, never below a floor. A channel's close is signed at open for
 * a fee fixed then (the payee re-checks it against its own node before it says yes); both
 * are bumped by CPFP later if the fee market has moved. The bump rate climbs each time, so
 * a spend that sits unconfirmed outbids whatever it sits behind before a timeout lets the
 * other side take the coins.
 */
import { checkFeeRate, MAX_FEE_RATE } from '../bitcoin/policy.js';
import type { ChainBackend } from './backend.js';
import { FeeRate } from '../bitcoin/fee-rate.js';

/** A settling spend aims at confirming within about an hour: bumps cover the urgent case. */
export const SETTLE_TARGET_BLOCKS = 6;
/** A bump aims at the next two blocks: by then the close has already waited. */
const BUMP_TARGET_BLOCKS = 2;
/**
 * The least settling fee rate (sat/vB): twice the relay minimum, so that a close or claim
 * still enters mempools whose minimum has risen a little, where CPFP can then reach it.
 */
export const MIN_SETTLE_FEE_RATE = FeeRate.ofSatPerVb(2n);

/** The fee rate of a settling spend: the node's estimate, or `floor` if that is higher (or the node has none). */
export async function settleFeeRate(chain: Pick<ChainBackend, 'estimateFeeRate'>, floor: FeeRate): Promise<FeeRate> {
  const estimate = await chain.estimateFeeRate(SETTLE_TARGET_BLOCKS);
  return checkFeeRate(estimate === null ? floor : FeeRate.max(estimate, floor));
}

/**
 * The rate of the next automatic bump: the node's urgent estimate, and at least a quarter
 * above the last bump (and above the spend's own rate), within the safety cap.
 */
export async function nextBumpRate(chain: Pick<ChainBackend, 'estimateFeeRate'>, last: FeeRate): Promise<FeeRate> {
  const estimate = await chain.estimateFeeRate(BUMP_TARGET_BLOCKS);
  // A quarter more, rounded up to the finest step: the climb never stalls.
  const climb = last.scaled(5n, 4n);
  const rate = estimate === null ? climb : FeeRate.max(estimate, climb);
  return rate.compare(MAX_FEE_RATE) > 0 ? MAX_FEE_RATE : rate;
}
