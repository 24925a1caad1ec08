/**
 * Where a running process takes its wallet's account from: the keystore it unlocked (and
 * checked against the seed), never the file again, which anyone who can write the datadir
 * could have replaced since.
 */
import { copyFileSync } from 'node:fs';
import path from 'node:path';
import { tempDir } from './helpers/tmp.js';
import { testWallet } from './helpers/wallets.js';
import { keystorePath } from '../src/keystore/keystore.js';
import { sessionAccount, walletAccount } from '../src/wallet/wallet.js';

test('a keystore file replaced by another wallet\'s after unlocking: the session\'s account is still its own', async () => {
  const tmp = tempDir();
  try {
    const ours = await testWallet(path.join(tmp.dir, 'ours'));
    const theirs = await testWallet(path.join(tmp.dir, 'theirs'));
    const before = sessionAccount(ours.session, 'regtest').toBase58();
    copyFileSync(keystorePath(theirs.networkDir), keystorePath(ours.networkDir));
    expect(walletAccount(ours.networkDir, 'regtest').toBase58()).toBe(walletAccount(theirs.networkDir, 'regtest').toBase58()); // the file is theirs now
    expect(sessionAccount(ours.session, 'regtest').toBase58()).toBe(before);
    expect(before).not.toBe(walletAccount(theirs.networkDir, 'regtest').toBase58());
  } finally {
    tmp.remove();
  }
});
