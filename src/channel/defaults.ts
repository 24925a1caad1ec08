/**
 * A channel's default terms and their bounds, apart from the protocol's code: the CLI shows
 * them in its options' help without loading the Bitcoin libraries the protocol needs.
 */
import { FeeRate } from '../bitcoin/fee-rate.js';

/** A close margin is blocks before an expiry, which is at most a year of blocks ahead. */
export const MAX_CLOSE_MARGIN = 52_560;

/** Blocks from the open to the expiry: a day by default, at least two, at most a year. */
export const DEFAULT_EXPIRY_BLOCKS = 144;
export const MIN_EXPIRY_BLOCKS = 2;
export const MAX_EXPIRY_BLOCKS = MAX_CLOSE_MARGIN;

export interface PayeePolicy {
  minCapacity: bigint;
  maxCapacity: bigint;
  /** The expiry must be at least this many blocks ahead when the channel opens. */
  minExpiryBlocks: number;
  /** Confirmations of the funding transaction before payments count: at least 1. */
  confirmations: number;
  /** Close this many blocks before the expiry (and stop taking payments then), so the close confirms before the payer can refund. */
  closeMargin: number;
  /** The least close fee rate agreed at open, sat/vB, whatever the node estimates. */
  minCloseFeeRate: FeeRate;
  /** Bump a close by CPFP once it has waited this many blocks unconfirmed since its last broadcast or bump. */
  bumpAfter: number;
}

/**
 * The close margin: about four hours of blocks. The payee closes (and payments stop) this
 * many blocks before the payer can refund; with a bump every `bumpAfter` blocks that the
 * close waits, each a quarter higher than the last, it leaves room for about ten bumps
 * (the last at ten times the first rate) and for an outage of the payee's server of a few
 * hours. README ("Closing") has the reasoning.
 */
const DEFAULT_CLOSE_MARGIN = 24;

export const DEFAULT_POLICY: PayeePolicy = {
  minCapacity: 10_000n,
  maxCapacity: 100_000_000n,
  minExpiryBlocks: DEFAULT_CLOSE_MARGIN + 12,
  confirmations: 1,
  closeMargin: DEFAULT_CLOSE_MARGIN,
  minCloseFeeRate: FeeRate.ofSatPerVb(2n),
  bumpAfter: 2,
};
