/**
 * The library's front door: a datadir on a network (its keystore, its node connection,
 * its TPM) as `Swarmpay`, and an unlocked wallet as `Wallet`, whose channels and escrows
 * the contract protocols drive. Results are the objects `--json` prints; failures are
 * SwarmpayError with a stable code.
 */
import { existsSync } from 'node:fs';
import { SwarmpayError } from '../errors.js';
import { addressToScript } from '../bitcoin/address.js';
import { keystorePath, readKeystore } from '../keystore/keystore.js';
import type { ScryptParams } from '../keystore/crypto.js';
import { newMnemonic } from '../wallet/mnemonic.js';
import { createWallet, receiveAddress, unlockSeed, walletAccount, walletBalance, walletPublic, type Balance } from '../wallet/wallet.js';
import { planSend, signSend } from '../wallet/send.js';
import { openContracts, type ContractContext } from '../wallet/contract-wallet.js';
import { Environment, type SwarmpayOptions } from './environment.js';
import { Channels } from './channels.js';
import { Escrows } from './escrow.js';
import { TpmApi } from './tpm.js';
import { unlockerFor, type Credentials } from './credentials.js';

export type { Balance, Credentials, SwarmpayOptions };

/** The shortest keystore passphrase accepted. */
export const MIN_PASSPHRASE_LENGTH = 8;


export interface WalletCreated {
  network: string;
  restored: boolean;
  keystore: string;
  xpub: string;
  fingerprint: string;
  path: string;
  /** The new wallet's mnemonic (the restored one's is not repeated): its only backup. */
  mnemonic: string | null;
}

export interface WalletInfo {
  network: string;
  keystore: string;
  protector: 'passphrase' | 'tpm';
  xpub: string;
  fingerprint: string;
  path: string;
  created: string;
}

export interface SendSummary {
  to: string;
  amount: bigint;
  fee: bigint;
  feeRate: bigint;
}

export interface SendOptions extends Credentials {
  feeRate: bigint;
  /** Asked with the fee known, before anything is signed; false cancels (USAGE, nothing sent). */
  confirm?: (s: SendSummary) => Promise<boolean>;
  /** Wait for this many confirmations. */
  confirmations?: number;
  onProgress?: (confirmations: number, wanted: number) => void;
}

export interface SendResult {
  txid: string;
  to: string;
  amount: bigint;
  fee: bigint;
  feeRate: bigint;
  vsize: number;
  change: { address: string; value: bigint } | null;
  confirmations: number;
}

export class Swarmpay {
  readonly env: Environment;
  readonly tpm: TpmApi;

  constructor(options: SwarmpayOptions = {}) {
    this.env = new Environment(options);
    this.tpm = new TpmApi(this.env);
  }

  get network() {
    return this.env.network;
  }

  get keystore(): string {
    return keystorePath(this.env.networkDir);
  }

  /**
   * Creates the wallet (a new 24-word mnemonic, or `mnemonic` to restore one); never
   * overwrites a keystore. `backup` receives a new mnemonic before the keystore is written,
   * so that no wallet exists whose only copy of the seed is the keystore.
   */
  createWallet(o: { passphrase: string; mnemonic?: string; backup?: (mnemonic: string) => void; scrypt?: Omit<ScryptParams, 'salt'> }): WalletCreated {
    this.checkNoWallet();
    if (o.passphrase.length < MIN_PASSPHRASE_LENGTH) {
      throw new SwarmpayError('WEAK_PASSPHRASE', `the passphrase has ${o.passphrase.length} characters; it needs at least ${MIN_PASSPHRASE_LENGTH}`, { hint: 'choose a longer passphrase' });
    }
    const mnemonic = o.mnemonic ?? newMnemonic();
    if (o.mnemonic === undefined) o.backup?.(mnemonic);
    const pub = createWallet(this.env.networkDir, this.network, o.passphrase, mnemonic, o.scrypt);
    return { network: this.network, restored: o.mnemonic !== undefined, keystore: this.keystore, xpub: pub.xpub, fingerprint: pub.fingerprint, path: pub.path, mnemonic: o.mnemonic === undefined ? mnemonic : null };
  }

  /** Refuses before anything is asked for when a wallet exists (checked again, under the lock, when it is written). */
  checkNoWallet(): void {
    if (existsSync(this.keystore)) throw new SwarmpayError('KEYSTORE_EXISTS', `a wallet already exists at ${this.keystore}`, { hint: 'use another --datadir; swarmpay never overwrites a keystore' });
  }

  info(): WalletInfo {
    const p = walletPublic(this.env.networkDir, this.network);
    const protector = readKeystore(this.keystore, this.network).header.protector.type;
    return { network: this.network, keystore: this.keystore, protector, ...p };
  }

  /** The first receive address nothing has paid yet (no unlock: the account's public key does). */
  address(): Promise<{ address: string; path: string }> {
    return receiveAddress(this.env.chain(), this.env.networkDir, this.network);
  }

  balance(): Promise<Balance> {
    return walletBalance(this.env.chain(), this.env.networkDir, this.network);
  }

  /** Pays `amount` sats to `to`: planned and shown (confirm) before the keystore is unlocked to sign. */
  async send(to: string, amount: bigint, o: SendOptions): Promise<SendResult> {
    addressToScript(to, this.network); // a bad address fails before the node is asked anything
    const chain = this.env.chain();
    const plan = await planSend(chain, walletAccount(this.env.networkDir, this.network), this.network, to, amount, o.feeRate);
    if (o.confirm && !(await o.confirm({ to, amount, fee: plan.spend.fee, feeRate: o.feeRate }))) throw new SwarmpayError('USAGE', 'cancelled; nothing was sent');
    const seed = await unlockSeed(this.env.networkDir, this.network, unlockerFor(this.env, o));
    const signed = signSend(plan, seed, this.network);
    await chain.broadcast(signed.hex);
    let confirmations = 0;
    if (o.confirmations !== undefined && o.confirmations > 0) {
      const tx = await chain.waitForConfirmations(signed.txid, o.confirmations, { ...(o.onProgress ? { onProgress: o.onProgress } : {}), pollMs: this.pollMs });
      confirmations = tx.confirmations;
    }
    return { txid: signed.txid, to, amount, fee: signed.fee, feeRate: o.feeRate, vsize: signed.vsize, change: plan.change, confirmations };
  }

  /** Unlocks the wallet for the contract protocols (channels, escrows). */
  async unlock(c: Credentials = {}): Promise<Wallet> {
    return new Wallet(await openContracts(this.env.networkDir, this.network, unlockerFor(this.env, c), this.env.chainOnDemand()), this.env);
  }

  /** How often waits look at the chain: regtest blocks come when mined, others every ten minutes. */
  get pollMs(): number {
    return this.env.pollMs;
  }

  close(): Promise<void> {
    return this.env.close();
  }
}

/** An unlocked wallet: its channels and escrows. Keep it open for as long as a server runs. */
export class Wallet {
  readonly channels: Channels;
  readonly escrow: Escrows;

  constructor(
    readonly contracts: ContractContext,
    readonly env: Environment,
  ) {
    this.channels = new Channels(contracts, env);
    this.escrow = new Escrows(contracts, env);
  }

  /** This wallet's static key on the peer link, hex: what peers pin. */
  get peerKey(): string {
    return this.contracts.wallet.peerKey.publicKey.toString('hex');
  }
}
