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
import { PASSPHRASE_NOTE, newMnemonic } from '../wallet/mnemonic.js';
import { createWallet, receiveAddress, unlockSeed, walletAccount, walletBalance, walletPublic, type Balance } from '../wallet/wallet.js';
import { planSend, resolveFeeRate, signSend, type SendAmount } from '../wallet/send.js';
import { allInputs, withLockedCoins } from '../wallet/coin-locks.js';
import { planBump } from '../wallet/rbf.js';
import { walletCoins, type WalletCoin } from '../wallet/coins.js';
import { freshReceiveAddress, type FreshAddress } from '../wallet/fresh-address.js';
import { accountZpub } from '../wallet/hd.js';
import { openContracts, type ContractContext } from '../wallet/contract-wallet.js';
import { Environment, type SwarmpayOptions } from './environment.js';
import { Channels } from './channels.js';
import { Escrows } from './escrow.js';
import { TpmApi } from './tpm.js';
import { passphraseOnlyWarning, unlockerFor, type Credentials, type KeystoreUse, type PassphraseAsk, type PassphraseOnly } from './credentials.js';
import { readOverview, type Overview } from './info.js';
import { readHistory, type History, type HistoryEntry, type HistoryOptions } from './history.js';
import { recordReplacement } from '../wallet/replacements.js';
import { waitForTx, type WaitHooks } from './wait.js';
import type { FeeRate } from '../bitcoin/fee-rate.js';

export type { Balance, Credentials, FreshAddress, History, HistoryEntry, HistoryOptions, KeystoreUse, PassphraseAsk, PassphraseOnly, SendAmount, SwarmpayOptions, WalletCoin };

/** The shortest keystore passphrase accepted. */
export const MIN_PASSPHRASE_LENGTH = 8;


export interface WalletCreated {
  network: string;
  restored: boolean;
  keystore: string;
  xpub: string;
  fingerprint: string;
  path: string;
  /** Whether the wallet takes a BIP39 passphrase beside its mnemonic: the words alone are not its backup then. */
  bip39Passphrase: boolean;
  /** The new wallet's mnemonic (the restored one's is not repeated): its only backup. */
  mnemonic: string | null;
}

export interface WalletInfo {
  network: string;
  keystore: string;
  protector: 'passphrase' | 'tpm';
  xpub: string;
  /** The same key as a zpub (mainnet) or vpub: what wallets that tell segwit accounts by prefix import. */
  zpub: string;
  fingerprint: string;
  path: string;
  created: string;
  /** Whether the seed takes a BIP39 passphrase beside the mnemonic (never the passphrase itself). */
  bip39Passphrase: boolean;
}

export interface SendSummary {
  to: string;
  /** What `to` gets. */
  amount: bigint;
  fee: bigint;
  feeRate: FeeRate;
  /** Back to this wallet; null when there is no change output. */
  change: { address: string; value: bigint } | null;
}

export interface SendOptions extends Credentials, WaitHooks {
  /** sat/vB, or 'auto': the node's estimate for confirming within about an hour. */
  feeRate: FeeRate | 'auto';
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
  feeRate: FeeRate;
  vsize: number;
  change: { address: string; value: bigint } | null;
  confirmations: number;
}

export interface BumpOptions extends Credentials {
  /** sat/vB, or 'auto': the node's estimate; either way above the payment's own rate. */
  feeRate: FeeRate | 'auto';
  /** Asked with the new fee known, before anything is signed; false cancels (USAGE, nothing sent). */
  confirm?: (s: { replaces: string; oldFee: bigint; fee: bigint; feeRate: FeeRate }) => Promise<boolean>;
}

export interface BumpResult {
  txid: string;
  /** The payment replaced: once the replacement is in the mempool, it never confirms. */
  replaces: string;
  oldFee: bigint;
  fee: bigint;
  feeRate: FeeRate;
  vsize: number;
  /** What is left of the change; null when it fell below the dust limit and went to the fee. */
  change: { address: string; value: bigint } | null;
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
   * so that no wallet exists whose only copy of the seed is the keystore; `text` is what to
   * file: the words, and with a BIP39 passphrase a `#` line saying it is needed too (a
   * restore from that file without one is refused).
   *
   * `bip39Passphrase`, the optional "25th word", is not the keystore's `passphrase`: it
   * changes the seed, so the same mnemonic with another (or none) is another wallet.
   */
  createWallet(o: { passphrase: string; mnemonic?: string; bip39Passphrase?: string; backup?: (mnemonic: string, text: string) => void; scrypt?: Omit<ScryptParams, 'salt'> }): WalletCreated {
    this.checkNoWallet();
    if (o.passphrase.length < MIN_PASSPHRASE_LENGTH) {
      throw new SwarmpayError('WEAK_PASSPHRASE', `the passphrase has ${o.passphrase.length} characters; it needs at least ${MIN_PASSPHRASE_LENGTH}`, { hint: 'choose a longer passphrase' });
    }
    const bip39Passphrase = o.bip39Passphrase ?? '';
    const mnemonic = o.mnemonic ?? newMnemonic();
    if (o.mnemonic === undefined) o.backup?.(mnemonic, bip39Passphrase === '' ? `${mnemonic}\n` : `${mnemonic}\n${PASSPHRASE_NOTE}\n`);
    const pub = createWallet(this.env.networkDir, this.network, o.passphrase, mnemonic, o.scrypt, bip39Passphrase);
    return { network: this.network, restored: o.mnemonic !== undefined, keystore: this.keystore, xpub: pub.xpub, fingerprint: pub.fingerprint, path: pub.path, bip39Passphrase: pub.bip39Passphrase, mnemonic: o.mnemonic === undefined ? mnemonic : null };
  }

  /**
   * The warning due before a keystore is made (`create`) or opened with a passphrase for
   * `use`, or null; `createWallet` always makes a passphrase keystore (`tpm provision`
   * seals it afterwards).
   */
  passphraseOnly(use: KeystoreUse): PassphraseOnly | null {
    return passphraseOnlyWarning(this.env, use);
  }

  /** Refuses before anything is asked for when a wallet exists (checked again, under the lock, when it is written). */
  checkNoWallet(): void {
    if (existsSync(this.keystore)) throw new SwarmpayError('KEYSTORE_EXISTS', `a wallet already exists at ${this.keystore}`, { hint: 'use another --datadir; swarmpay never overwrites a keystore' });
  }

  info(): WalletInfo {
    const p = walletPublic(this.env.networkDir, this.network);
    const protector = readKeystore(this.keystore, this.network).header.protector.type;
    return { network: this.network, keystore: this.keystore, protector, ...p, zpub: accountZpub(p.xpub, this.network) };
  }

  /** The datadir at a glance (`swarmpay info`): each part, or why it cannot be read; channels and escrows need the passphrase of a passphrase keystore. */
  overview(c: Credentials = {}): Promise<Overview> {
    return readOverview(this.env, this.tpm, c);
  }

  /** The first receive address nothing has paid yet (no unlock: the account's public key does). */
  address(): Promise<{ address: string; path: string }> {
    return receiveAddress(this.env.chain(), this.env.networkDir, this.network);
  }

  /**
   * A receive address never returned by this call before, paid or not (its index is kept
   * in the datadir); refused when the last 20 given out are all unpaid, as a restored
   * wallet would not look past them.
   */
  newAddress(): Promise<FreshAddress> {
    return freshReceiveAddress(this.env.chain(), walletAccount(this.env.networkDir, this.network), this.network, this.env.networkDir);
  }

  /** The wallet's coins, largest first, each with whether a payment may spend it now. */
  utxos(): Promise<WalletCoin[]> {
    return walletCoins(this.env.chain(), walletAccount(this.env.networkDir, this.network), this.network, this.env.networkDir);
  }

  balance(): Promise<Balance> {
    return walletBalance(this.env.chain(), this.env.networkDir, this.network);
  }

  /**
   * The wallet's transactions, newest first (the mempool on top), each with its net amount
   * to the wallet, the fee where the wallet paid it, and the channel or escrow step it is.
   * Needs a chain backend with an address index (btcd with --addrindex; Bitcoin Core, or a
   * btcd without it: HISTORY_UNAVAILABLE). Channel and escrow labels need the keystore
   * opened: by the TPM, or with `passphrase`; a keystore that cannot be opened (its TPM
   * unreachable, a wrong passphrase) leaves them out (`contracts: 'unavailable'`), not the history.
   */
  history(o: HistoryOptions = {}): Promise<History> {
    return readHistory(this.env, o);
  }

  /**
   * Pays `amount` sats to `to` (or that less the fee with subtractFee, or 'max': every
   * spendable coin less the fee): planned and shown (confirm) before the keystore is
   * unlocked to sign. The result's amount is what `to` gets.
   */
  async send(to: string, amount: bigint | SendAmount, o: SendOptions): Promise<SendResult> {
    addressToScript(to, this.network); // a bad address fails before the node is asked anything
    const chain = this.env.chain();
    const feeRate = await resolveFeeRate(chain, o.feeRate);
    // Its coins stay locked until the payment is broadcast: another send at once picks others.
    const account = walletAccount(this.env.networkDir, this.network);
    const { plan, signed } = await withLockedCoins(
      chain,
      this.env.networkDir,
      (exclude) => planSend(chain, account, this.network, to, amount, feeRate, { exclude }),
      allInputs,
      async (plan) => {
        if (o.confirm && !(await o.confirm({ to, amount: plan.amount, fee: plan.spend.fee, feeRate, change: plan.change }))) throw new SwarmpayError('USAGE', 'cancelled; nothing was sent');
        const seed = await unlockSeed(this.env.networkDir, this.network, unlockerFor(this.env, o, 'spend'));
        const signed = signSend(plan, seed, this.network);
        await chain.broadcast(signed.hex);
        return { plan, signed };
      },
    );
    let confirmations = 0;
    if (o.confirmations !== undefined && o.confirmations > 0) {
      const wanted = o.confirmations;
      const timedOut = { stands: 'the payment is broadcast and may still confirm, so sending it again would pay twice', hint: '`swarmpay wallet balance` counts it as unconfirmed until it confirms' };
      const tx = await waitForTx(signed.txid, o, timedOut, (timeoutMs) => chain.waitForConfirmations(signed.txid, wanted, { ...(o.onProgress ? { onProgress: o.onProgress } : {}), pollMs: this.env.pollMs, timeoutMs }));
      confirmations = tx.confirmations;
    }
    return { txid: signed.txid, to, amount: plan.amount, fee: signed.fee, feeRate, vsize: signed.vsize, change: plan.change, confirmations };
  }

  /**
   * Replaces the wallet's own unconfirmed payment `txid` by the same payment at a higher
   * fee rate (RBF): same inputs and outputs, the extra fee from its change.
   */
  async bump(txid: string, o: BumpOptions): Promise<BumpResult> {
    const chain = this.env.chain();
    const feeRate = await resolveFeeRate(chain, o.feeRate);
    const plan = await planBump(chain, walletAccount(this.env.networkDir, this.network), this.network, txid.trim().toLowerCase(), feeRate);
    if (o.confirm && !(await o.confirm({ replaces: plan.replaces.txid, oldFee: plan.replaces.fee, fee: plan.spend.fee, feeRate }))) throw new SwarmpayError('USAGE', 'cancelled; nothing was sent');
    const seed = await unlockSeed(this.env.networkDir, this.network, unlockerFor(this.env, o, 'spend'));
    const signed = signSend(plan, seed, this.network);
    await chain.broadcast(signed.hex);
    // For `wallet history`: once the replacement is in, the node forgets what it replaced.
    recordReplacement(this.env.networkDir, signed.txid, plan.replaces.txid);
    return { txid: signed.txid, replaces: plan.replaces.txid, oldFee: plan.replaces.fee, fee: signed.fee, feeRate, vsize: signed.vsize, change: plan.change };
  }

  /**
   * Unlocks the wallet for the contract protocols (channels, escrows); `use` says whether
   * the caller is about to spend or lock coins with it (see KeystoreUse).
   */
  async unlock(c: Credentials = {}, use: KeystoreUse = 'other'): Promise<Wallet> {
    return new Wallet(await openContracts(this.env.networkDir, this.network, unlockerFor(this.env, c, use), this.env.chainOnDemand()), this.env);
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
