/**
 * What a channel's close pays in fees. The close is signed at open for a fee fixed then,
 * so it is agreed from the node's estimate (never below a floor); the payee re-checks it
 * against its own node before it says yes, and bumps the close by CPFP later if the fee
 * market has moved. The bump rate climbs each time, so a close that sits unconfirmed
 * outbids whatever it sits behind before the expiry lets the payer refund.
 */
import { checkFeeRate, MAX_FEE_RATE } from '../bitcoin/policy.js';
import type { ChainBackend } from '../chain/backend.js';

/** The close is agreed for confirming within about an hour: bumps cover the urgent case. */
export const CLOSE_TARGET_BLOCKS = 6;
/** A bump aims at the next two blocks: by then the close has already waited. */
export const BUMP_TARGET_BLOCKS = 2;
/**
 * The least close fee rate (sat/vB): twice the relay minimum, so that a close still enters
 * mempools whose minimum has risen a little, where CPFP can then reach it.
 */
export const MIN_CLOSE_FEE_RATE = 2n;

/**
 * The most a payee takes as a close fee, as a multiple of what its node asks: the two
 * sides' nodes estimate apart, but a close fee comes out of the payee's share, so a payer
 * must not be able to make the payee's first payments go to miners.
 */
export const MAX_CLOSE_FEE_FACTOR = 3n;

/** The close fee rate to agree: the node's estimate, or `floor` if that is higher (or the node has none). */
export async function closeFeeRate(chain: ChainBackend, floor: bigint): Promise<bigint> {
  const estimate = await chain.estimateFeeRate(CLOSE_TARGET_BLOCKS);
  return checkFeeRate(estimate !== null && estimate > floor ? estimate : floor);
}

/**
 * The rate of the next automatic bump: the node's urgent estimate, and at least a quarter
 * above the last bump (and above the close's own rate), within the safety cap.
 */
export async function nextBumpRate(chain: ChainBackend, last: bigint): Promise<bigint> {
  const estimate = (await chain.estimateFeeRate(BUMP_TARGET_BLOCKS)) ?? 0n;
  const climb = last + (last + 3n) / 4n;
  const rate = estimate > climb ? estimate : climb;
  return rate > MAX_FEE_RATE ? MAX_FEE_RATE : rate;
}
