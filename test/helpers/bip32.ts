/**
 * The bip32 library, made as before src/wallet/xprv.ts replaced it: the reference the
 * wallet's own derivation (private and public) is checked against.
 */
import { BIP32Factory, type BIP32API } from 'bip32';
import * as ecc from 'tiny-secp256k1';

let api: BIP32API | null = null;

export function bip32(): BIP32API {
  return (api ??= BIP32Factory(ecc));
}
