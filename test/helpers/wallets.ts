/** Wallets in temporary datadirs, unlocked as the channel and escrow code uses them. */
import path from 'node:path';
import type { NetworkName } from '../../src/bitcoin/network.js';
import type { ChainBackend } from '../../src/chain/backend.js';
import { passphraseUnlocker, type KeystoreSession } from '../../src/keystore/keystore.js';
import { SCRYPT_N_MIN } from '../../src/keystore/crypto.js';
import { newMnemonic } from '../../src/wallet/mnemonic.js';
import { createWallet, receiveAddress, unlockWallet } from '../../src/wallet/wallet.js';
import { faucetPay } from '../../src/wallet/faucet.js';

export const TEST_PASSPHRASE = 'a good long passphrase';

export interface TestWallet {
  datadir: string;
  networkDir: string;
  network: NetworkName;
  session: KeystoreSession;
  seed: Uint8Array;
}

/** A new wallet under `datadir` (scrypt at its smallest accepted cost, to keep tests quick). */
export async function testWallet(datadir: string, network: NetworkName = 'regtest'): Promise<TestWallet> {
  const networkDir = path.join(datadir, network);
  createWallet(networkDir, network, TEST_PASSPHRASE, newMnemonic(), { N: SCRYPT_N_MIN, r: 8, p: 1 });
  const { session, seed } = await unlockWallet(networkDir, network, passphraseUnlocker(TEST_PASSPHRASE), { checkpoint: false });
  return { datadir, networkDir, network, session, seed };
}

/** Pays the wallet from the faucet and confirms it. */
export async function fund(chain: ChainBackend, w: TestWallet, sats: bigint): Promise<void> {
  const a = await receiveAddress(chain, w.networkDir, w.network);
  await faucetPay(chain, a.address, sats);
  await chain.mine(1);
}
