/**
 * Prompts, only on a terminal and never with --yes; scripts get files or flags instead.
 * They read stdin and draw on stderr: stdout carries the command's result alone, so
 * `… --json | jq` and `… --json > out.json` work at a terminal too.
 */
import { isatty } from 'node:tty';
import { SwarmpayError } from '../errors.js';
import { readSecretFile } from './input-file.js';

/** Ctrl-C at a prompt: the user stopped the command, which is no error of it; main() ends quietly with EXIT_CANCELLED. */
export class Cancelled extends Error {
  override readonly name = 'Cancelled';
}

/** The prompts' library, loaded on the first question: most runs ask none, and it is a tenth of a second to load. */
const inquirer = () => import('@inquirer/prompts');

/**
 * The terminal: keys from stdin, the prompt drawn on stderr. Opened at the first question:
 * process.stdin is a stream Node builds on first use, a cost most runs, which ask nothing,
 * need not pay.
 */
const terminal = () => ({ input: process.stdin, output: process.stderr });
type Terminal = ReturnType<typeof terminal>;

export class Prompter {
  /** Whether a question can be asked: not with --yes, and only with stdin and stderr both on a terminal. */
  readonly interactive: boolean;

  /** `wanted`: false with --yes (or when the caller knows there is no one to ask). */
  constructor(wanted: boolean) {
    this.interactive = wanted && isatty(0) && isatty(2);
  }

  private require(what: string, flag: string, code: 'KEYSTORE_LOCKED' | 'USAGE' = 'USAGE'): void {
    if (!this.interactive) throw new SwarmpayError(code, `${what} is needed and there is no terminal to ask on`, { hint: `pass ${flag}` });
  }

  /**
   * One question; Ctrl-C there is Cancelled, saying `cancelled` (what was done before the
   * question stands, what would have come after it was not done).
   */
  private async ask<T>(question: (context: Terminal) => Promise<T>, cancelled = 'cancelled; nothing was done'): Promise<T> {
    try {
      return await question(terminal());
    } catch (e) {
      if (e instanceof Error && e.name === 'ExitPromptError') throw new Cancelled(cancelled);
      throw e;
    }
  }

  async passphrase(file: string | undefined, opts: { confirm?: boolean } = {}): Promise<string> {
    if (file !== undefined) return readSecretFile(file, 'passphrase');
    this.require('the keystore passphrase', '--passphrase-file FILE', 'KEYSTORE_LOCKED');
    if (opts.confirm) return this.askTwice('Keystore passphrase:', 'Repeat the passphrase:', 'the two passphrases differ');
    const { password } = await inquirer();
    return this.ask((t) => password({ message: 'Keystore passphrase:', mask: true }, t));
  }

  /**
   * The optional BIP39 passphrase ("25th word"), from FILE or, asked for by flag, the
   * terminal (twice: a typo would make another wallet). Named so that it is never taken for
   * the keystore's passphrase.
   */
  async bip39Passphrase(file: string | undefined): Promise<string> {
    const text = file !== undefined ? readSecretFile(file, 'BIP39 passphrase') : await this.askBip39Passphrase();
    if (text === '') throw new SwarmpayError('USAGE', 'the BIP39 passphrase is empty', { hint: 'an empty BIP39 passphrase is none: leave the option out for a wallet without one' });
    return text;
  }

  private async askBip39Passphrase(): Promise<string> {
    this.require('the BIP39 passphrase', '--bip39-passphrase-file FILE');
    return this.askTwice('BIP39 passphrase, the "25th word" (not the keystore passphrase):', 'Repeat the BIP39 passphrase:', 'the two BIP39 passphrases differ');
  }

  /** A secret asked for twice, masked, and refused (`mismatch`) when the two differ: a typo in a new secret would lock the owner out. */
  private async askTwice(message: string, repeat: string, mismatch: string): Promise<string> {
    const { password } = await inquirer();
    const first = await this.ask((t) => password({ message, mask: true }, t));
    const again = await this.ask((t) => password({ message: repeat, mask: true }, t));
    if (again !== first) throw new SwarmpayError('USAGE', mismatch, { hint: 'run the command again' });
    return first;
  }

  async mnemonic(file: string | undefined): Promise<string> {
    if (file !== undefined) return readSecretFile(file, 'mnemonic');
    this.require('the mnemonic to restore', '--mnemonic-file FILE');
    const { password } = await inquirer();
    return this.ask((t) => password({ message: 'Mnemonic (words separated by spaces):', mask: true }, t));
  }

  /** Asks to go ahead; without a terminal (or with --yes) the answer is yes. */
  async confirm(message: string): Promise<boolean> {
    if (!this.interactive) return true;
    const { confirm } = await inquirer();
    return this.ask((t) => confirm({ message, default: false }, t));
  }

  /**
   * The consent a command that locks or spends coins needs, as the library's `confirm`:
   * on a terminal the facts are shown and the question asked; --yes gave it beforehand
   * (no question: undefined); with neither, the command is refused before it asks for
   * anything else.
   */
  consent<S>(yes: boolean | undefined, what: string, show: (s: S) => { facts: string[]; question: string }): ((s: S) => Promise<boolean>) | undefined {
    if (this.interactive) {
      return (s) => {
        const { facts, question } = show(s);
        return this.confirmFacts(facts, question);
      };
    }
    if (yes) return undefined;
    throw new SwarmpayError('USAGE', `${what} needs a yes, and there is no terminal to ask on`, { hint: 'pass -y (--yes) to go ahead without asking; nothing was done' });
  }

  /** Shows the facts a question is about, then asks it; the facts go to the terminal whatever --json says: they belong to the question. */
  confirmFacts(facts: string[], question: string): Promise<boolean> {
    process.stderr.write(facts.join('\n') + '\n');
    return this.confirm(question);
  }

  async pause(message: string): Promise<void> {
    if (!this.interactive) return;
    const { input } = await inquirer();
    await this.ask((t) => input({ message }, t), 'interrupted; what was done before the prompt stands');
  }
}
