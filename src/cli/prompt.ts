/** Prompts, only on a TTY and never with --yes; scripts get files or flags instead. */
import { confirm, input, password } from '@inquirer/prompts';
import { SwarmpayError } from '../errors.js';
import { readSecretFile } from './input-file.js';

export class Prompter {
  constructor(readonly interactive: boolean) {}

  private require(what: string, flag: string, code: 'KEYSTORE_LOCKED' | 'USAGE' = 'USAGE'): void {
    if (!this.interactive) throw new SwarmpayError(code, `${what} is needed and there is no terminal to ask on`, { hint: `pass ${flag}` });
  }

  async passphrase(file: string | undefined, opts: { confirm?: boolean } = {}): Promise<string> {
    if (file !== undefined) return readSecretFile(file, 'passphrase');
    this.require('the keystore passphrase', '--passphrase-file FILE', 'KEYSTORE_LOCKED');
    const first = await password({ message: 'Keystore passphrase:', mask: true });
    if (opts.confirm) {
      const again = await password({ message: 'Repeat the passphrase:', mask: true });
      if (again !== first) throw new SwarmpayError('USAGE', 'the two passphrases differ', { hint: 'run the command again' });
    }
    return first;
  }

  async mnemonic(file: string | undefined): Promise<string> {
    if (file !== undefined) return readSecretFile(file, 'mnemonic');
    this.require('the mnemonic to restore', '--mnemonic-file FILE');
    return password({ message: 'Mnemonic (words separated by spaces):', mask: true });
  }

  /** Asks to go ahead; without a terminal (or with --yes) the answer is yes. */
  async confirm(message: string): Promise<boolean> {
    if (!this.interactive) return true;
    return confirm({ message, default: false });
  }

  async pause(message: string): Promise<void> {
    if (this.interactive) await input({ message });
  }
}
