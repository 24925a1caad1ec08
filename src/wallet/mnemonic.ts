import { entropyToMnemonic, mnemonicToSeedSync, validateMnemonic, wordlists } from 'bip39';
import { randomBytes } from 'node:crypto';
import { SwarmpayError } from '../errors.js';

const ENGLISH = wordlists.english!;

/** A new 24-word BIP39 mnemonic from 256 bits of the OS's randomness. */
export function newMnemonic(): string {
  return entropyToMnemonic(randomBytes(32), ENGLISH);
}

/** Normalises a mnemonic a user typed or filed and checks its words and checksum. */
export function checkMnemonic(text: string): string {
  const words = text.normalize('NFKD').trim().toLowerCase().split(/\s+/).filter(Boolean);
  const unknown = words.filter((w) => !ENGLISH.includes(w));
  if (unknown.length > 0) {
    throw new SwarmpayError('INVALID_MNEMONIC', `"${unknown[0]}" is not a BIP39 English word`, { hint: 'check the spelling of each word' });
  }
  if (![12, 15, 18, 21, 24].includes(words.length)) {
    throw new SwarmpayError('INVALID_MNEMONIC', `a BIP39 mnemonic has 12, 15, 18, 21 or 24 words, not ${words.length}`, { hint: 'check that no word is missing' });
  }
  const mnemonic = words.join(' ');
  if (!validateMnemonic(mnemonic, ENGLISH)) {
    throw new SwarmpayError('INVALID_MNEMONIC', 'the mnemonic\'s checksum does not match: a word is wrong or out of order', { hint: 'check each word and their order' });
  }
  return mnemonic;
}

export function mnemonicToSeed(mnemonic: string, bip39Passphrase = ''): Uint8Array {
  return mnemonicToSeedSync(mnemonic, bip39Passphrase);
}
