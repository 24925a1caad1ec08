/** Files a user names on the command line: read whole, or refused with the path and why. */
import { readFileSync } from 'node:fs';
import { SwarmpayError } from '../errors.js';

export function readTextFile(file: string, what: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (e) {
    throw new SwarmpayError('INVALID_FILE', `cannot read the ${what} file ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { hint: 'check the path' });
  }
}

/** A passphrase or mnemonic file: one trailing newline is what `echo` and editors add, not part of the secret. */
export function readSecretFile(file: string, what: string): string {
  return readTextFile(file, what).replace(/\r?\n$/, '');
}
