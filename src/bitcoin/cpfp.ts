/**
 * Child-pays-for-parent arithmetic, pure: the fee a child must pay so that it and its
 * unconfirmed parent together reach a fee rate, and what replacing an earlier child of the
 * same parent costs. Sizes are vbytes, fees sats; every fee from a rate is rounded up (FeeRate.feeFor).
 */
import { MIN_RELAY_FEE_RATE } from './policy.js';
import { FeeRate } from './fee-rate.js';

export interface ChildFeeTerms {
  parentFee: bigint;
  parentVsize: bigint;
  childVsize: bigint;
  /** The rate the parent and child together must reach. */
  feeRate: FeeRate;
  /** An earlier child of the same parent, in the mempool, that this one replaces. */
  replacing?: { fee: bigint; vsize: bigint } | undefined;
}

const max = (a: bigint, b: bigint): bigint => (a > b ? a : b);

export function cpfpChildFee(t: ChildFeeTerms): bigint {
  // The pair reaches the rate, and the child never pays less than the rate for itself: a
  // parent that already pays enough must not drag its child below what it asks for.
  let fee = max(t.feeRate.feeFor(t.parentVsize + t.childVsize) - t.parentFee, t.feeRate.feeFor(t.childVsize));
  const old = t.replacing;
  if (old) {
    // BIP125 rules 3 and 4: the replaced fee, plus relay for the replacement's own size.
    fee = max(fee, old.fee + MIN_RELAY_FEE_RATE.feeFor(t.childVsize));
    // btcd and Core also refuse a replacement whose own rate is not above the replaced
    // one's; btcd compares whole sat/kvB, rounded down.
    fee = max(fee, FeeRate.paidBy(old.fee, old.vsize).justAbove().feeFor(t.childVsize));
  }
  return fee;
}

/** What parent and child together pay, rounded down to whole sat/kvB. */
export function packageFeeRate(parentFee: bigint, parentVsize: bigint, childFee: bigint, childVsize: bigint): FeeRate {
  return FeeRate.paidBy(parentFee + childFee, parentVsize + childVsize);
}
