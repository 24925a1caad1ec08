/**
 * One command's run: the library's Environment (network, folders, chain, TPM) from the
 * global options, and the terminal's output and prompts.
 */
import { isatty } from 'node:tty';
import type { Environment, SwarmpayOptions } from '../api/environment.js';
import { Swarmpay, type KeystoreUse, type PassphraseAsk, type PassphraseOnly, type Wallet } from '../api/swarmpay.js';
import { Output } from './output.js';
import { Prompter } from './prompt.js';
import { peerStderrLine } from './peer-stderr.js';

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
  private warnedPassphraseOnly = false;

  constructor(readonly opts: GlobalOptions) {
    this.out = new Output(!!opts.json);
    // A --peer-cmd command's stderr: its lines on ours, each marked with the peer's name.
    this.swarmpay = new Swarmpay({ ...opts, peerStderr: (line, peer) => this.out.note(peerStderrLine(this.out.color, peer, line)) });
    this.env = this.swarmpay.env;
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

  /**
   * The passphrase, from its file or a prompt, after the warning the library says is due
   * for what it is asked for (creating, spending; never a read or `tpm provision`).
   */
  passphrase(passphraseFile: string | undefined): (ask: PassphraseAsk) => Promise<string> {
    return async (ask) => {
      this.warnPassphraseOnly(ask.passphraseOnly);
      return this.prompt.passphrase(passphraseFile);
    };
  }

  /** That only a passphrase guards the keystore, and the way out: once a run, however often the keystore is opened. */
  warnPassphraseOnly(w: PassphraseOnly | null): void {
    if (w === null || this.warnedPassphraseOnly) return;
    this.warnedPassphraseOnly = true;
    const way = w.tpm === null ? 'no TPM was found (see --tpm): on a device with one, `swarmpay tpm provision` seals it' : `this device has a TPM (${w.tpm}): \`swarmpay tpm provision\` seals the keystore to it`;
    this.out.warn(`only a passphrase protects this keystore: no TPM seals its key, and nothing refuses a rolled-back copy; ${way}`);
  }

  /** The wallet unlocked for channels and escrows (the passphrase from FILE or a prompt, or the TPM); `use` 'spend' where it will spend or lock coins. */
  unlockWallet(passphraseFile: string | undefined, use: KeystoreUse = 'other'): Promise<Wallet> {
    return this.swarmpay.unlock({ passphrase: this.passphrase(passphraseFile) }, use);
  }

  async close(): Promise<void> {
    this.out.flush();
    await this.env.close();
  }
}
