/**
 * Fee and size policy, in one place: virtual sizes of the scripts swarmpay spends and
 * pays, dust thresholds as Bitcoin Core's standardness rules compute them, and the
 * safety caps that refuse absurd fees before anything is signed.
 */
import { opcodes } from 'bitcoinjs-lib';
import { SwarmpayError } from '../errors.js';
// The bounds of a rate a user gives live with FeeRate, apart from bitcoinjs: the CLI parses --fee-rate before it loads the wallet.
export { MAX_FEE_RATE, MIN_RELAY_FEE_RATE, checkFeeRate, parseFeeRate } from './fee-rate.js';

/** A fee above this share of what is sent (and above MAX_FEE_ABS_FLOOR) is refused as absurd. */
const MAX_FEE_SHARE_PERCENT = 50n;
const MAX_FEE_ABS_FLOOR = 100_000n;

/** Virtual bytes of a P2WPKH input with its witness (signature at its longest, 72 bytes). */
export const P2WPKH_INPUT_VBYTES = 68n;
/** Version, locktime, counts and the segwit marker and flag. */
export const TX_OVERHEAD_VBYTES = 11n;

/** vbytes of one output paying `script` (8 value + 1 length + script). */
export function outputVbytes(script: Uint8Array): bigint {
  return BigInt(8 + 1 + script.length);
}

/**
 * The smallest output a node relays (Bitcoin Core's GetDustThreshold at 3 sat/vB):
 * 3 × (output size + the size of the input that will spend it).
 */
export function dustThreshold(script: Uint8Array): bigint {
  // Outpoint, sequence and script length, plus a signature-and-key sized unlock: in the
  // witness (discounted 4x, rounded down as Core does) for segwit outputs, else in the scriptSig.
  const spendSize = isWitnessProgram(script) ? 32 + 4 + 1 + 26 + 4 : 32 + 4 + 1 + 107 + 4;
  return 3n * (outputVbytes(script) + BigInt(spendSize));
}

function isWitnessProgram(script: Uint8Array): boolean {
  const version = script[0];
  if (version === undefined || script.length < 4 || script.length > 42) return false;
  return (version === 0x00 || (version >= 0x51 && version <= 0x60)) && script[1] === script.length - 2;
}

export type PayoutType = 'p2wpkh' | 'p2wsh' | 'p2tr' | 'p2pkh' | 'p2sh';

/**
 * The scripts swarmpay pays out to, byte for byte: the bytes before the hash, its length,
 * the bytes after. Core relays a few more: P2PK and bare multisig, which a node's policy
 * may refuse, and future witness versions, which anyone can spend today.
 */
const PAYOUT_TEMPLATES: readonly [PayoutType, number[], number, number[]][] = [
  ['p2wpkh', [opcodes.OP_0, 20], 20, []],
  ['p2wsh', [opcodes.OP_0, 32], 32, []],
  ['p2tr', [opcodes.OP_1, 32], 32, []],
  ['p2pkh', [opcodes.OP_DUP, opcodes.OP_HASH160, 20], 20, [opcodes.OP_EQUALVERIFY, opcodes.OP_CHECKSIG]],
  ['p2sh', [opcodes.OP_HASH160, 20], 20, [opcodes.OP_EQUAL]],
];

/** The longest standard payout (34 bytes): message parsers cap a peer's script with it before anything reads it. */
export const MAX_PAYOUT_SCRIPT_BYTES = Math.max(...PAYOUT_TEMPLATES.map(([, pre, n, post]) => pre.length + n + post.length));

/** Which standard payout `script` is, or null if it is none of them exactly. */
export function payoutType(script: Uint8Array): PayoutType | null {
  const fits = ([, pre, n, post]: (typeof PAYOUT_TEMPLATES)[number]) =>
    script.length === pre.length + n + post.length &&
    pre.every((b, i) => script[i] === b) &&
    post.every((b, i) => script[pre.length + n + i] === b);
  return PAYOUT_TEMPLATES.find(fits)?.[0] ?? null;
}

/** Refuses a fee that is absurd for what the transaction pays. */
export function checkAbsoluteFee(fee: bigint, paid: bigint): void {
  const cap = (paid * MAX_FEE_SHARE_PERCENT) / 100n;
  if (fee > MAX_FEE_ABS_FLOOR && fee > cap) {
    throw new SwarmpayError('FEE_TOO_HIGH', `the fee of ${fee} sats would be more than ${MAX_FEE_SHARE_PERCENT}% of the ${paid} sats sent`, {
      hint: 'lower --fee-rate, or send a larger amount',
    });
  }
}
