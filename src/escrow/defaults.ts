/**
 * An escrow's defaults and bounds, apart from the protocol's code: the CLI shows them in its
 * options' help without loading the Bitcoin libraries the protocol needs.
 */

/**
 * Blocks from acceptance to the buyer's refund when the buyer names none: a day. Long
 * enough for the seller to see the funding confirm and claim; short enough that coins a
 * seller never claims come back the next day. An offer that wants more is accepted only
 * with the buyer's own --timeout: its minimum may be a year of locked coins.
 */
export const DEFAULT_ACCEPT_TIMEOUT = 144;

/**
 * Blocks a claim may wait unconfirmed before it is bumped, as a channel's close: with the
 * claim at least the margin before the timeout and each bump a quarter above the last, a
 * claim outbids what it sits behind long before the refund becomes valid. Within the
 * margin it is bumped every block.
 */
export const DEFAULT_BUMP_AFTER = 2;

/** Items are read, encrypted and sent whole; this keeps that within reason for a device. */
export const MAX_ITEM_BYTES = 64 * 1024 * 1024;

/** Blocks before the timeout from which the seller no longer claims without --force. */
export const DEFAULT_CLAIM_MARGIN = 6;
