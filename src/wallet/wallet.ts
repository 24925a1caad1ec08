/**
 * The HD wallet over the keystore: create or restore a BIP39 seed, read the account's
 * public part without unlocking, and unlock the seed when something must be signed.
 */
import type { ChainBackend } from '../chain/backend.js';
import type { NetworkName } from '../bitcoin/network.js';
import { SwarmpayError } from '../errors.js';
import { createKeystore, keystorePath, readKeystore, unlockKeystore, type KeystoreSession, type Unlocker } from '../keystore/keystore.js';
import type { ScryptParams } from '../keystore/crypto.js';
import type { Json } from '../util/canonical-json.js';
import { scanChain } from './discovery.js';
import { RECEIVE, accountFromXpub, accountNode, accountPath, accountXpub, deriveAddress } from './hd.js';
import { mnemonicToSeed, restoreMnemonic } from './mnemonic.js';
import type { ExtendedPublicKey, PublicNode } from './xpub.js';
import { isSpendable } from './coin-select.js';
import { ownedUtxos } from './send.js';
import { whileBusy } from './busy.js';

export interface WalletPublic {
  xpub: string;
  fingerprint: string;
  path: string;
  created: string;
  /** Whether the seed takes a BIP39 passphrase beside the mnemonic (never the passphrase itself). */
  bip39Passphrase: boolean;
}


export interface Balance {
  confirmed: bigint;
  unconfirmed: bigint;
  /** Confirmed but not yet spendable (coinbase before maturity). */
  immature: bigint;
  utxos: number;
}

function fingerprintOf(seed: Uint8Array, network: NetworkName): string {
  return Buffer.from(accountNode(seed, network).fingerprint).toString('hex');
}

/**
 * The keystore's secret holds the mnemonic and, when there is one, the BIP39 passphrase
 * ("25th word"): the seed is derived from both at every unlock, so the passphrase's effect
 * stays after the wallet is closed and opened again.
 */
export function createWallet(
  networkDir: string,
  network: NetworkName,
  passphrase: string,
  mnemonic: string,
  scrypt?: Omit<ScryptParams, 'salt'>,
  bip39Passphrase = '',
): WalletPublic {
  const words = restoreMnemonic(mnemonic, bip39Passphrase);
  const seed = mnemonicToSeed(words, bip39Passphrase);
  // An empty BIP39 passphrase is the standard wallet of the mnemonic: no passphrase at all.
  const secret: { [k: string]: Json } = bip39Passphrase === '' ? { mnemonic: words } : { mnemonic: words, bip39Passphrase };
  const pub = { xpub: accountXpub(seed, network), fingerprint: fingerprintOf(seed, network), path: accountPath(network), bip39Passphrase: bip39Passphrase !== '' };
  const header = createKeystore(keystorePath(networkDir), network, passphrase, pub, { wallet: secret }, scrypt);
  return { ...pub, created: header.created };
}

export function walletPublic(networkDir: string, network: NetworkName): WalletPublic {
  const { header } = readKeystore(keystorePath(networkDir), network);
  const p = header.public;
  if (typeof p.xpub !== 'string' || typeof p.fingerprint !== 'string' || typeof p.path !== 'string') {
    throw new SwarmpayError('KEYSTORE_CORRUPT', 'the keystore has no wallet account', { hint: 'restore the wallet from its mnemonic into a new datadir' });
  }
  // Keystores written before BIP39 passphrases were offered have no such key: they have none.
  return { xpub: p.xpub, fingerprint: p.fingerprint, path: p.path, created: header.created, bip39Passphrase: p.bip39Passphrase === true };
}

export function walletAccount(networkDir: string, network: NetworkName): ExtendedPublicKey {
  return accountFromXpub(walletPublic(networkDir, network).xpub, network);
}

/**
 * Unlocks the wallet: the keystore session and the seed, checking that the public part the
 * wallet has been showing is the seed's own. With `checkpoint` (a wallet open that can
 * spend) the anti-rollback counter advances.
 */
export async function unlockWallet(networkDir: string, network: NetworkName, unlocker: Unlocker, opts: { checkpoint: boolean }): Promise<{ session: KeystoreSession; seed: Uint8Array }> {
  const session = await unlockKeystore(keystorePath(networkDir), network, unlocker, opts);
  const w = session.secret.wallet as { mnemonic?: unknown; bip39Passphrase?: unknown } | undefined;
  if (typeof w?.mnemonic !== 'string' || !(w.bip39Passphrase === undefined || typeof w.bip39Passphrase === 'string')) {
    throw new SwarmpayError('KEYSTORE_CORRUPT', 'the keystore holds no wallet seed', { hint: 'restore the wallet from its mnemonic into a new datadir' });
  }
  const seed = mnemonicToSeed(w.mnemonic, w.bip39Passphrase ?? '');
  if (accountXpub(seed, network) !== session.header.public.xpub) {
    throw new SwarmpayError('KEYSTORE_CORRUPT', 'the keystore\'s xpub does not belong to its seed', { hint: 'restore the wallet from its mnemonic into a new datadir' });
  }
  return { session, seed };
}

/** How long a payment waits for another command's unlock of the keystore (a second or so of scrypt each). */
const KEYSTORE_WAIT_MS = 30_000;

/**
 * Unlocks the wallet for a payment (a wallet open: a checkpoint of the anti-rollback counter),
 * after any other command's unlock in progress: two payments at once both go through.
 */
export function unlockForPayment(networkDir: string, network: NetworkName, unlocker: Unlocker): Promise<{ session: KeystoreSession; seed: Uint8Array }> {
  return whileBusy(() => unlockWallet(networkDir, network, unlocker, { checkpoint: true }), KEYSTORE_WAIT_MS);
}

/** The account of an unlocked wallet, from the keystore it holds open (no file read). */
export function sessionAccount(session: KeystoreSession, network: NetworkName): ExtendedPublicKey {
  const xpub = session.header.public.xpub;
  if (typeof xpub !== 'string') throw new SwarmpayError('KEYSTORE_CORRUPT', 'the keystore has no wallet account', { hint: 'restore the wallet from its mnemonic into a new datadir' });
  return accountFromXpub(xpub, network);
}

/** The first receive address no transaction has paid yet. */
export async function receiveAddress(chain: ChainBackend, networkDir: string, network: NetworkName): Promise<{ address: string; path: string }> {
  return receiveAddressOf(chain, walletAccount(networkDir, network), network);
}

/** receiveAddress of an account already at hand. */
export async function receiveAddressOf(chain: ChainBackend, account: PublicNode, network: NetworkName): Promise<{ address: string; path: string }> {
  const receive = await scanChain(chain, account, network, RECEIVE);
  const a = deriveAddress(account, network, RECEIVE, receive.nextUnused);
  return { address: a.address, path: a.path };
}

export async function walletBalance(chain: ChainBackend, networkDir: string, network: NetworkName): Promise<Balance> {
  const { utxos } = await ownedUtxos(chain, walletAccount(networkDir, network), network);
  const b: Balance = { confirmed: 0n, unconfirmed: 0n, immature: 0n, utxos: utxos.length };
  for (const u of utxos) {
    if (u.confirmations === 0) b.unconfirmed += u.value;
    else if (isSpendable(u)) b.confirmed += u.value;
    else b.immature += u.value;
  }
  return b;
}
