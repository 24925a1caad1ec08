/**
 * tiny-secp256k1, loaded on first use: it compiles its WebAssembly when loaded, and a command
 * that signs or checks nothing (`wallet balance`, `--version`) should not pay for it.
 * CommonJS through require, as a synchronous import must be.
 */
import { createRequire } from 'node:module';

type Ecc = typeof import('tiny-secp256k1');

let lib: Ecc | null = null;

export function ecc(): Ecc {
  return (lib ??= createRequire(import.meta.url)('tiny-secp256k1') as Ecc);
}
