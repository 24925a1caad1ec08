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
import { serializeXpub, xpubVersion, type ExtendedPublicKey } from '../src/wallet/xpub.js';

const tpub = (a: ExtendedPublicKey) => serializeXpub(a, xpubVersion('regtest'));

test('a keystore file replaced by another wallet\'s after unlocking: the session\'s account is still its own', async () => {
  const tmp = tempDir();
  try {
    const ours = await testWallet(path.join(tmp.dir, 'ours'));
    const theirs = await testWallet(path.join(tmp.dir, 'theirs'));
    const before = tpub(sessionAccount(ours.session, 'regtest'));
    copyFileSync(keystorePath(theirs.networkDir), keystorePath(ours.networkDir));
    expect(tpub(walletAccount(ours.networkDir, 'regtest'))).toBe(tpub(walletAccount(theirs.networkDir, 'regtest'))); // the file is theirs now
    expect(tpub(sessionAccount(ours.session, 'regtest'))).toBe(before);
    expect(before).not.toBe(tpub(walletAccount(theirs.networkDir, 'regtest')));
  } finally {
    tmp.remove();
  }
});
