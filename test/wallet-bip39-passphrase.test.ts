/**
 * An optional BIP39 passphrase ("25th word") at `wallet create` and `wallet create --restore`:
 * the TREZOR vectors through the keystore and back (what is stored keeps the passphrase's
 * effect after unlock), and from the command line against a real btcd: the same mnemonic
 * and passphrase restore the same wallet, another passphrase (or none) another one; the
 * backup says the passphrase is needed, and a restore from it without one is refused; `wallet
 * info` says one is in use and never shows it.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { networks, payments } from 'bitcoinjs-lib';
import { passphraseUnlocker } from '../src/keystore/keystore.js';
import { SCRYPT_N_MIN } from '../src/keystore/crypto.js';
import { accountPath } from '../src/wallet/hd.js';
import { bip32 } from './helpers/bip32.js';
import { createWallet, unlockWallet, walletPublic } from '../src/wallet/wallet.js';
import { startTestNode, type TestNode } from './helpers/node.js';
import { snapshot, swarmpay } from './helpers/cli.js';
import { atTerminal, cmd } from './helpers/terminal.js';
import { tempDir } from './helpers/tmp.js';

const bip39v = JSON.parse(readFileSync(new URL('./vectors/bip39.json', import.meta.url), 'utf8')) as { passphrase: string; vectors: { mnemonic: string; seed: string; xprv: string }[] };
const KEYSTORE_PASS = 'a good long passphrase';
const BIP39_PASS = 'correct horse, the 25th word';

describe('BIP39 passphrase: the TREZOR vectors through the keystore', () => {
  let tmp: ReturnType<typeof tempDir>;
  beforeAll(() => (tmp = tempDir()));
  afterAll(() => tmp?.remove());

  test.each(bip39v.vectors.map((v, n) => ({ n, ...v })))('vector $n: stored, unlocked, the seed of mnemonic + "TREZOR"', async (v) => {
    const dir = path.join(tmp.dir, `v${v.n}`);
    const pub = createWallet(dir, 'mainnet', KEYSTORE_PASS, v.mnemonic, { N: SCRYPT_N_MIN, r: 8, p: 1 }, bip39v.passphrase);
    const root = bip32().fromSeed(Buffer.from(v.seed, 'hex'));
    expect(root.toBase58()).toBe(v.xprv);
    expect(pub.xpub).toBe(root.derivePath(accountPath('mainnet')).neutered().toBase58());
    expect(walletPublic(dir, 'mainnet').bip39Passphrase).toBe(true);
    // What the keystore holds gives the same seed after an unlock: the passphrase's effect is kept.
    const { seed } = await unlockWallet(dir, 'mainnet', passphraseUnlocker(KEYSTORE_PASS), { checkpoint: false });
    expect(Buffer.from(seed).toString('hex')).toBe(v.seed);
  });

  test('without the passphrase the same words are another wallet, and say they have none', () => {
    const v = bip39v.vectors[0]!;
    const pub = createWallet(path.join(tmp.dir, 'none'), 'mainnet', KEYSTORE_PASS, v.mnemonic, { N: SCRYPT_N_MIN, r: 8, p: 1 });
    expect(pub.bip39Passphrase).toBe(false);
    expect(pub.xpub).not.toBe(bip32().fromSeed(Buffer.from(v.seed, 'hex')).derivePath(accountPath('mainnet')).neutered().toBase58());
  });
});

describe('BIP39 passphrase from the command line, on a real btcd', () => {
  let node: TestNode;
  let tmp: ReturnType<typeof tempDir>;
  let pass: string;
  let bip39: string;
  let words: string;
  let created: { fingerprint: string; xpub: string; bip39Passphrase: boolean };
  const dd = (name: string) => path.join(tmp.dir, name);
  const run = (name: string, ...args: string[]) => swarmpay(['--datadir', dd(name), '--tpm', 'none', '--rpc-url', node.state.rpcUrl, '--rpc-cookie', node.state.cookieFile, ...args]);
  const restore = (name: string, ...extra: string[]) => run(name, 'wallet', 'create', '--restore', '--mnemonic-file', words, '--passphrase-file', pass, ...extra);

  beforeAll(async () => {
    node = await startTestNode();
    tmp = tempDir();
    pass = dd('pass');
    bip39 = dd('bip39');
    words = dd('a.words');
    writeFileSync(pass, KEYSTORE_PASS + '\n');
    // Spaces inside and at the end are the passphrase's own; only the one newline is not.
    writeFileSync(bip39, BIP39_PASS + ' \n');
    const r = await run('a', 'wallet', 'create', '--mnemonic-file', words, '--passphrase-file', pass, '--bip39-passphrase-file', bip39);
    // Nothing on stderr but the one warning a passphrase-only keystore gets at create.
    expect([r.code, r.stderr.trim().split('\n').map((l) => l.replace(/:.*/, ''))]).toEqual([0, ['warning']]);
    created = r.json;
  });
  afterAll(async () => {
    await node?.stop();
    tmp?.remove();
  });

  test('create says a BIP39 passphrase is in use, and the mnemonic file says it is needed', () => {
    expect(created.bip39Passphrase).toBe(true);
    const text = readFileSync(words, 'utf8');
    expect(text.split('\n')[0]!.split(' ')).toHaveLength(24);
    expect(text).toMatch(/^# this wallet also needs its BIP39 passphrase/m);
    expect(text).not.toContain(BIP39_PASS);
  });

  test('restoring with the same mnemonic and passphrase gives the same wallet; another passphrase, or none, another', async () => {
    const same = await restore('same', '--bip39-passphrase-file', bip39);
    expect([same.code, same.json.fingerprint, same.json.xpub, same.json.bip39Passphrase]).toEqual([0, created.fingerprint, created.xpub, true]);
    // The trailing space counts: "…word" is not "…word ".
    writeFileSync(dd('other.bip39'), BIP39_PASS + '\n');
    const other = await restore('other', '--bip39-passphrase-file', dd('other.bip39'));
    expect(other.code).toBe(0);
    expect(other.json.fingerprint).not.toBe(created.fingerprint);
    // The words alone, without the backup's line saying a passphrase is needed: taken as a wallet without one.
    const bare = dd('bare.words');
    writeFileSync(bare, readFileSync(words, 'utf8').split('\n')[0] + '\n');
    const none = await run('none', 'wallet', 'create', '--restore', '--mnemonic-file', bare, '--passphrase-file', pass);
    expect([none.code, none.json.bip39Passphrase]).toEqual([0, false]);
    expect(new Set([created.fingerprint, other.json.fingerprint, none.json.fingerprint]).size).toBe(3);
  });

  test('a backup that says a BIP39 passphrase is needed is refused without one, and nothing is stored', async () => {
    const before = snapshot(tmp.dir);
    // Its own line, as the backup has it, or with Windows line ends and blanks around it.
    writeFileSync(dd('crlf.words'), readFileSync(words, 'utf8').replace(/\n/g, '\r\n').replace(/^#/m, '  #'));
    for (const file of [words, dd('crlf.words')]) {
      const r = await run('forgot', 'wallet', 'create', '--restore', '--mnemonic-file', file, '--passphrase-file', pass);
      expect([r.code, r.json.error.code]).toEqual([1, 'USAGE']);
      expect(r.json.error.message).toContain('this backup says the wallet has a BIP39 passphrase');
      expect(r.json.error.hint).toContain('--bip39-passphrase');
    }
    expect(Object.keys(snapshot(tmp.dir)).filter((k) => !(k in before))).toEqual(['crlf.words']);
  });

  test('wallet info says a passphrase is in use and never shows it; the keystore does not hold it in the clear', async () => {
    const info = await run('a', 'wallet', 'info');
    expect(info.json.bip39Passphrase).toBe(true);
    expect(info.stdout).not.toContain(BIP39_PASS);
    expect((await run('none', 'wallet', 'info')).json.bip39Passphrase).toBe(false);
    expect(readFileSync(path.join(dd('a'), 'regtest', 'keystore.json'), 'utf8')).not.toContain('correct horse');
  });

  test('the restored wallet spends its coins: the seed after unlock is the passphrase\'s', async () => {
    const addr = (await run('same', 'wallet', 'address')).json.address as string;
    expect((await run('same', 'node', 'mine', '1', '--to', addr)).code).toBe(0);
    await node.chain.mine(100);
    const to = payments.p2wpkh({ hash: Buffer.alloc(20, 7), network: networks.regtest }).address!;
    const sent = await run('same', 'wallet', 'send', to, '100000', '--passphrase-file', pass);
    expect([sent.code, sent.stderr.includes('error')]).toEqual([0, false]);
    // The wallet it was first created as sees the same coins: one wallet, two datadirs.
    expect((await run('a', 'wallet', 'balance')).json.unconfirmed).toBeGreaterThan(0);
  });

  test('asked for on a terminal (twice, named apart from the keystore passphrase), it makes the same wallet', async () => {
    const out = dd('typed.json');
    const t = atTerminal(`${cmd(['--datadir', dd('typed'), '--tpm', 'none', '--rpc-url', node.state.rpcUrl, '--rpc-cookie', node.state.cookieFile, 'wallet', 'create', '--restore', '--mnemonic-file', words, '--passphrase-file', pass, '--bip39-passphrase', '--json'])} > '${out}'`);
    await t.type('BIP39 passphrase, the "25th word" (not the keystore passphrase):', `${BIP39_PASS} \r`);
    await t.type('Repeat the BIP39 passphrase:', `${BIP39_PASS} \r`);
    expect(await t.exit).toBe(0);
    expect(JSON.parse(readFileSync(out, 'utf8'))).toMatchObject({ fingerprint: created.fingerprint, bip39Passphrase: true });
  });

  test('refused before anything is stored: no terminal to ask on, both forms at once, two secrets from stdin, an empty one', async () => {
    const before = snapshot(tmp.dir);
    const cases: [string[], string][] = [
      [['--bip39-passphrase'], 'no terminal'],
      [['--bip39-passphrase', '--bip39-passphrase-file', bip39], 'give one of them'],
      [['--bip39-passphrase-file', '-', '--passphrase-file', '-'], 'only one'],
      [['--bip39-passphrase-file', dd('empty')], 'empty'],
    ];
    writeFileSync(dd('empty'), '\n');
    const after = { ...snapshot(tmp.dir) };
    for (const [extra, says] of cases) {
      const args = extra.includes('--passphrase-file') ? extra : [...extra, '--passphrase-file', pass];
      const r = await run('refused', 'wallet', 'create', '--restore', '--mnemonic-file', words, ...args);
      expect([extra, r.code, r.json.error.code]).toEqual([extra, 1, 'USAGE']);
      expect(r.json.error.message).toContain(says);
    }
    expect(snapshot(tmp.dir)).toEqual(after);
    expect(Object.keys(after).filter((k) => !(k in before))).toEqual(['empty']);
  });
});
