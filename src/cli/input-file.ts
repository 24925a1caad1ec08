/** Files a user names on the command line: read whole, or refused with the path and why. */
import { readFileSync } from 'node:fs';
import { SwarmpayError } from '../errors.js';

export function readTextFile(file: string | 0, what: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (e) {
    throw new SwarmpayError('INVALID_FILE', `cannot read the ${what} file ${file === 0 ? '- (stdin)' : file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { hint: 'check the path' });
  }
}

/**
 * A passphrase or mnemonic file, `-` for stdin (a pipe: on a terminal the prompt is the way);
 * one trailing newline is what `echo` and editors add, not part of the secret.
 */
export function readSecretFile(file: string, what: string): string {
  if (file === '-' && process.stdin.isTTY) throw new SwarmpayError('USAGE', `the ${what} file is - (stdin), and stdin is a terminal`, { hint: `pipe the ${what} in (e.g. from a password manager), or leave the option out to be asked` });
  // fd 0, not /dev/stdin: a pipe a parent process made may be a socket, which /dev/stdin cannot open.
  return readTextFile(file === '-' ? 0 : file, what).replace(/\r?\n$/, '');
}
