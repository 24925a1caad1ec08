/**
 * One command's run: the library's Environment (network, folders, chain, TPM) from the
 * global options, and the terminal's output and prompts.
 */
import { isatty } from 'node:tty';
import type { Environment, SwarmpayOptions } from '../api/environment.js';
import { Swarmpay, type Wallet } from '../api/swarmpay.js';
import type { Unlocker } from '../keystore/keystore.js';
import { Output } from './output.js';
import { Prompter } from './prompt.js';

export interface GlobalOptions extends SwarmpayOptions {
  json?: boolean;
  yes?: boolean;
}

export class Context {
  /** The library on the datadir and network of the global options. */
  readonly swarmpay: Swarmpay;
  readonly env: Environment;
  readonly out: Output;
  readonly prompt: Prompter;

  constructor(readonly opts: GlobalOptions) {
    this.swarmpay = new Swarmpay(opts);
    this.env = this.swarmpay.env;
    this.out = new Output(!!opts.json);
    // isatty, not process.stdin.isTTY: that would build the stdin stream every command.
    this.prompt = new Prompter(isatty(0) && !opts.yes);
  }

  get network() {
    return this.env.network;
  }

  get networkDir(): string {
    return this.env.networkDir;
  }

  get nodeDir(): string {
    return this.env.nodeDir;
  }

  /** The passphrase, from its file or a prompt, after the loud warning that only a passphrase guards this keystore. */
  passphrase(passphraseFile: string | undefined): () => Promise<string> {
    return async () => {
      this.out.warn('this keystore is protected by a passphrase only: no TPM seals its key and nothing refuses a rolled-back copy; run `swarmpay tpm provision` on a device with a TPM');
      return this.prompt.passphrase(passphraseFile);
    };
  }

  /** The wallet unlocked for channels and escrows: the passphrase from FILE or a prompt, or the TPM. */
  unlockWallet(passphraseFile: string | undefined): Promise<Wallet> {
    return this.swarmpay.unlock({ passphrase: this.passphrase(passphraseFile) });
  }

  /** What the keystore may ask for: the passphrase or the TPM. */
  unlocker(passphraseFile: string | undefined): Unlocker {
    return { passphrase: this.passphrase(passphraseFile), tpm: () => this.env.tpm() };
  }

  async close(): Promise<void> {
    this.out.flush();
    await this.env.close();
  }
}
