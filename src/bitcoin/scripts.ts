/**
 * Output scripts and witnesses as the wallet's bookkeeping reads them: a script in hex (how
 * it is shown, and a key for maps of scripts), and whether a transaction could be a
 * contract's. Every swarmpay contract, channel or escrow, is a P2WSH output.
 */

export function scriptHex(script: Uint8Array): string {
  return Buffer.from(script).toString('hex');
}

/** OP_0 <32 bytes>: a P2WSH output. */
export function isP2wsh(script: Uint8Array): boolean {
  return script.length === 34 && script[0] === 0x00 && script[1] === 0x20;
}

/** A compressed public key's length: the last item of a P2WPKH witness. */
const PUBKEY_BYTES = 33;
/** A Schnorr signature's lengths (64, or 65 with a sighash byte): a taproot key-path witness's one item. */
const SCHNORR_SIG_BYTES = [64, 65];

/**
 * Whether an input may spend a P2WSH output, told from its witness alone (the output it
 * spends is not at hand): a legacy input has none, a P2WPKH spend is a signature and a
 * 33-byte key, a taproot key-path spend one signature. Any other witness ends with a script
 * or a control block, and is taken as possibly a contract's: a wrong "maybe" costs a look at
 * the records, a wrong "no" would hide a contract's label.
 */
export function maySpendP2wsh(witness: Uint8Array[]): boolean {
  if (witness.length === 0) return false;
  if (witness.length === 2 && witness[1]!.length === PUBKEY_BYTES) return false;
  return !(witness.length === 1 && SCHNORR_SIG_BYTES.includes(witness[0]!.length));
}
