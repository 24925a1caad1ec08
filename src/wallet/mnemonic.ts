import { createRequire } from 'node:module';
import { pbkdf2Sync, randomBytes } from 'node:crypto';
import { SwarmpayError } from '../errors.js';

/**
 * The bip39 package (CommonJS), loaded on first use: with its word lists it takes about 17 ms
 * to load, and unlocking a wallet, which every payment does, needs none of it.
 */
const bip39 = (): typeof import('bip39') => createRequire(import.meta.url)('bip39') as typeof import('bip39');
const english = (): string[] => bip39().wordlists.english!;

/** A new 24-word BIP39 mnemonic from 256 bits of the OS's randomness. */
export function newMnemonic(): string {
  return bip39().entropyToMnemonic(randomBytes(32), english());
}

/**
 * What a mnemonic file says beside the words of a wallet with a BIP39 passphrase: the words
 * alone restore another, empty wallet. A `#` line: not one of the words, but a restore
 * without a BIP39 passphrase heeds it (restoreMnemonic).
 */
export const PASSPHRASE_NOTE = '# this wallet also needs its BIP39 passphrase: these words without it restore a different, empty wallet';

/**
 * checkMnemonic of a backup to restore from, which is refused when it says a BIP39
 * passphrase is needed and none was given: the words alone would restore another, empty
 * wallet, and nothing would say so.
 */
export function restoreMnemonic(text: string, bip39Passphrase: string): string {
  const mnemonic = checkMnemonic(text);
  if (bip39Passphrase === '' && text.split(/\r?\n/).some((l) => l.trim() === PASSPHRASE_NOTE)) {
    throw new SwarmpayError('USAGE', 'this backup says the wallet has a BIP39 passphrase: these words without it would restore a different, empty wallet', {
      hint: 'pass --bip39-passphrase or --bip39-passphrase-file; nothing was stored',
    });
  }
  return mnemonic;
}

/** Normalises a mnemonic a user typed or filed and checks its words and checksum; `#` lines are notes, not words. */
export function checkMnemonic(text: string): string {
  const lines = text.split(/\r?\n/).filter((l) => !l.trimStart().startsWith('#'));
  const words = lines.join(' ').normalize('NFKD').trim().toLowerCase().split(/\s+/).filter(Boolean);
  const wordlist = english();
  const unknown = words.filter((w) => !wordlist.includes(w));
  if (unknown.length > 0) {
    throw new SwarmpayError('INVALID_MNEMONIC', `"${unknown[0]}" is not a BIP39 English word`, { hint: 'check the spelling of each word' });
  }
  if (![12, 15, 18, 21, 24].includes(words.length)) {
    throw new SwarmpayError('INVALID_MNEMONIC', `a BIP39 mnemonic has 12, 15, 18, 21 or 24 words, not ${words.length}`, { hint: 'check that no word is missing' });
  }
  const mnemonic = words.join(' ');
  if (!bip39().validateMnemonic(mnemonic, wordlist)) {
    throw new SwarmpayError('INVALID_MNEMONIC', 'the mnemonic\'s checksum does not match: a word is wrong or out of order', { hint: 'check each word and their order' });
  }
  return mnemonic;
}

/**
 * BIP39's seed: PBKDF2-HMAC-SHA512 of the mnemonic, salted "mnemonic" + passphrase, both
 * NFKD, 2048 rounds. Node's native PBKDF2: the bip39 package's pure-JS one took 30 ms of
 * every unlock in a new process.
 */
export function mnemonicToSeed(mnemonic: string, bip39Passphrase = ''): Uint8Array {
  return pbkdf2Sync(Buffer.from(mnemonic.normalize('NFKD'), 'utf8'), Buffer.from('mnemonic' + bip39Passphrase.normalize('NFKD'), 'utf8'), 2048, 64, 'sha512');
}
