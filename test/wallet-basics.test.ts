/**
 * Wallet basics an operator expects (issue 15), from the command line against a real btcd:
 * the coins listed, a fresh address each call, send --max and --subtract-fee with the change
 * shown, the zpub/vpub beside the xpub, and the mnemonic lengths that restore.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { networks, payments } from 'bitcoinjs-lib';
import type { TestNode } from './helpers/node.js';
import { startCliWallet } from './helpers/cli-wallet.js';
import { ROOT, snapshot, swarmpay } from './helpers/cli.js';
import { tempDir } from './helpers/tmp.js';
import { accountZpub } from '../src/wallet/hd.js';
import type { WalletCoin } from '../src/wallet/coins.js';

const BIP84_MNEMONIC = 'abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about';
const BIP84_XPUB = 'xpub6CatWdiZiodmUeTDp8LT5or8nmbKNcuyvz7WyksVFkKB4RHwCD3XyuvPEbvqAQY3rAPshWcMLoP2fMFMKHPJ4ZeZXYVUhLv1VMrjPC7PW6V';
/** BIP84's own test vector for account 0 of that mnemonic. */
const BIP84_ZPUB = 'zpub6rFR7y4Q2AijBEqTUquhVz398htDFrtymD9xYYfG1m4wAcvPhXNfE3EfH1r1ADqtfSdVCToUG868RvUUkgDKf31mGDtKsAYz2oz2AGutZYs';

/** A coin as `wallet utxos --json` prints it: the library's WalletCoin, its value a JSON number. */
type Coin = Omit<WalletCoin, 'value'> & { value: number };

describe('wallet basics on a real btcd', () => {
  let node: TestNode;
  let tmp: ReturnType<typeof tempDir>;
  let a: string;
  let passFile: string;
  const run = (...args: string[]) => swarmpay(['--datadir', a, ...args]);
  const utxos = async () => (await run('wallet', 'utxos')).json.utxos as Coin[];
  /** An address of no wallet here. */
  const other = (n: number) => payments.p2wpkh({ hash: Buffer.alloc(20, n), network: networks.regtest }).address!;
  /** The human form: no --json. */
  const human = (...args: string[]) => execFileSync(path.join(ROOT, 'bin', 'swarmpay'), ['--datadir', a, '--yes', ...args], { env: { ...process.env, NO_COLOR: '1' }, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

  beforeAll(async () => {
    ({ node, tmp, datadir: a, passFile } = await startCliWallet());
  });
  afterAll(async () => {
    await node?.stop();
    tmp?.remove();
  });

  test('info shows the account key as a zpub (mainnet) or vpub beside the xpub', async () => {
    expect(accountZpub(BIP84_XPUB, 'mainnet')).toBe(BIP84_ZPUB);
    const info = await run('wallet', 'info');
    expect(info.json.zpub).toMatch(/^vpub/);
    expect(info.json.zpub).toBe(accountZpub(info.json.xpub, 'regtest'));
    expect(human('wallet', 'info')).toContain(`vpub:        ${info.json.zpub}`);
  });

  test('create --help names the mnemonic lengths that restore, and 12, 18 and 24 words do', async () => {
    expect((await run('wallet', 'create', '--help')).stdout).toMatch(/12, 15,\s+18, 21 or 24 words/);
    const lengths = { 12: BIP84_MNEMONIC, 18: 'abandon '.repeat(17) + 'agent', 24: 'abandon '.repeat(23) + 'art' };
    for (const [n, words] of Object.entries(lengths)) {
      const file = path.join(tmp.dir, `${n}.words`);
      writeFileSync(file, words + '\n');
      const r = await swarmpay(['--datadir', path.join(tmp.dir, `r${n}`), 'wallet', 'create', '--restore', '--mnemonic-file', file, '--passphrase-file', passFile]);
      // Nothing on stderr but the warning every passphrase-only keystore gets at create.
      expect([n, r.code, r.json?.restored, r.stderr.split('\n').filter((l) => l !== '' && !l.startsWith('warning: only a passphrase'))]).toEqual([n, 0, true, []]);
    }
  });

  test('address --new gives a fresh address each call, never one given before, and stores where it is', async () => {
    const first = (await run('wallet', 'address')).json.address as string;
    const fresh: string[] = [];
    for (let i = 0; i < 3; i++) fresh.push((await run('wallet', 'address', '--new')).json.address as string);
    expect(new Set(fresh).size).toBe(3);
    expect(fresh[0]).toBe(first); // nothing was given out before: the first unpaid one
    // Two at once still differ.
    const both = await Promise.all([run('wallet', 'address', '--new'), run('wallet', 'address', '--new')]);
    const twin = both.map((r) => r.json.address as string);
    expect(new Set([...fresh, ...twin]).size).toBe(5);
    expect(JSON.parse(readFileSync(path.join(a, 'regtest', 'addresses.json'), 'utf8'))).toEqual({ nextReceiveIndex: 5 });
    // Plain `address` is still the first unpaid one.
    expect((await run('wallet', 'address')).json.address).toBe(first);
  });

  test('address --new refuses to give out a 21st unpaid address, and changes nothing', async () => {
    const dir = path.join(tmp.dir, 'gap');
    const mfile = path.join(tmp.dir, 'gap.words');
    writeFileSync(mfile, 'abandon '.repeat(23) + 'art\n');
    expect((await swarmpay(['--datadir', dir, '--rpc-url', node.state.rpcUrl, '--rpc-cookie', node.state.cookieFile, 'wallet', 'create', '--restore', '--mnemonic-file', mfile, '--passphrase-file', passFile])).code).toBe(0);
    const gapRun = () => swarmpay(['--datadir', dir, '--rpc-url', node.state.rpcUrl, '--rpc-cookie', node.state.cookieFile, 'wallet', 'address', '--new']);
    for (let i = 0; i < 20; i++) {
      const r = await gapRun();
      expect([r.code, r.stderr]).toEqual([0, '']);
    }
    const before = snapshot(dir);
    const r = await gapRun();
    expect([r.code, r.json.error.code]).toEqual([1, 'USAGE']);
    expect(r.json.error.message).toMatch(/unpaid/);
    expect(snapshot(dir)).toEqual(before);
  });

  test('utxos lists each coin with its outpoint, value, confirmations, chain and whether it is spendable', async () => {
    const addr = (await run('wallet', 'address')).json.address as string;
    const mined = await run('node', 'mine', '101', '--to', addr);
    expect([mined.code, mined.json.error]).toEqual([0, undefined]);
    const coins = await utxos();
    expect(coins).toHaveLength(1);
    expect(coins[0]).toMatchObject({ value: Number(mined.json.paid.sats), address: addr, kind: 'receive', spendable: true, reason: null });
    expect(coins[0]!.txid).toMatch(/^[0-9a-f]{64}$/);
    expect(coins[0]!.confirmations).toBeGreaterThanOrEqual(1);
    expect(coins[0]!.path).toMatch(/^m\/84'\/1'\/0'\/0\/\d+$/);
  });

  test('send shows its change; the change coin is listed as change, and spendable while unconfirmed', async () => {
    const to = other(1);
    const r = await run('wallet', 'send', to, '100000', '--fee-rate', '2', '--passphrase-file', passFile);
    expect(r.code).toBe(0);
    expect(r.json.change.address).toMatch(/^bcrt1q/);
    const change = (await utxos()).filter((c) => c.txid === r.json.txid);
    expect(change).toEqual([expect.objectContaining({ address: r.json.change.address, value: r.json.change.value, kind: 'change', confirmations: 0, spendable: true, reason: null })]);
    await node.chain.mine(1);
    expect(human('wallet', 'send', to, '100000', '--fee-rate', '2', '--passphrase-file', passFile)).toMatch(/change \d+ sats to bcrt1q/);
    await node.chain.mine(1);
  });

  test('send --subtract-fee: the payee gets the amount less the fee, and the wallet pays exactly the amount', async () => {
    const to = other(2);
    const before = (await utxos()).reduce((s, c) => s + BigInt(c.value), 0n);
    const r = await run('wallet', 'send', to, '200000', '--subtract-fee', '--fee-rate', '3', '--passphrase-file', passFile);
    expect([r.code, r.json.error]).toEqual([0, undefined]);
    expect(r.json.amount).toBe(200000 - r.json.fee);
    expect(r.json.fee).toBeGreaterThanOrEqual(r.json.vsize * 3);
    const after = (await utxos()).reduce((s, c) => s + BigInt(c.value), 0n);
    expect(before - after).toBe(200_000n);
    const paid = await node.chain.utxos([to]);
    expect(paid.map((u) => u.value)).toEqual([BigInt(r.json.amount)]);
    await node.chain.mine(1);
  });

  test('bad combinations are usage errors, and nothing is stored; --fee-rate auto pays the node\'s estimate (refused when it has none)', async () => {
    const to = other(4);
    const before = snapshot(a);
    for (const args of [[to, '1000', '--max'], [to, '--max', '--subtract-fee'], [to]]) {
      const r = await run('wallet', 'send', ...args, '--passphrase-file', passFile);
      expect([r.code, r.json.error.code]).toEqual([1, 'USAGE']);
    }
    expect(snapshot(a)).toEqual(before);
    const auto = await run('wallet', 'send', to, '10000', '--fee-rate', 'auto', '--passphrase-file', passFile);
    // btcd on a fresh regtest chain has no estimate; with one the send would go through.
    if (auto.code !== 0) {
      expect([auto.code, auto.json.error.code]).toEqual([1, 'FEE_RATE_REQUIRED']);
      expect(snapshot(a)).toEqual(before);
    } else {
      expect(auto.json.feeRate).toBe((await node.chain.estimateFeeRate(6))?.toJSON());
      await node.chain.mine(1);
    }
  });

  test('a send spends the wallet\'s own unconfirmed change; a coin paid to a receive address waits for a confirmation', async () => {
    const first = await run('wallet', 'send', other(5), '100000', '--fee-rate', '2', '--passphrase-file', passFile);
    expect([first.code, first.json.error]).toEqual([0, undefined]);
    // Everything else the wallet has is in that change: the next payment must spend it unconfirmed.
    const self = (await run('wallet', 'address')).json.address as string;
    const second = await run('wallet', 'send', self, '50000', '--fee-rate', '2', '--passphrase-file', passFile);
    expect([second.code, second.json.error]).toEqual([0, undefined]);
    const tx = await node.chain.getTransaction(second.json.txid);
    expect(tx!.inputs.map((i) => i.txid)).toEqual([first.json.txid]);
    const coins = await utxos();
    expect(coins.find((c) => c.txid === second.json.txid && c.address === self)).toMatchObject({ kind: 'receive', confirmations: 0, spendable: false, reason: 'unconfirmed, and not our own change' });
    await node.chain.mine(1);
  });

  test('two sends at once both go through, on different coins, when there are coins enough', async () => {
    // Three coins of the wallet's own, confirmed.
    for (let i = 0; i < 3; i++) {
      const to = (await run('wallet', 'address', '--new')).json.address as string;
      expect((await run('wallet', 'send', to, '300000', '--fee-rate', '2', '--passphrase-file', passFile)).code).toBe(0);
    }
    await node.chain.mine(1);
    const sends = await Promise.all([6, 7].map((n) => run('wallet', 'send', other(n), '200000', '--fee-rate', '2', '--passphrase-file', passFile)));
    expect(sends.map((r) => [r.code, r.json.error])).toEqual([
      [0, undefined],
      [0, undefined],
    ]);
    const inputs = await Promise.all(sends.map(async (r) => (await node.chain.getTransaction(r.json.txid))!.inputs.map((i) => `${i.txid}:${i.vout}`)));
    expect(inputs[0]!.filter((o) => inputs[1]!.includes(o))).toEqual([]);
    expect(readdirSync(path.join(a, 'regtest', 'coin-locks'))).toEqual([]);
    await node.chain.mine(1);
  });

  test('bump replaces an unconfirmed payment at a higher fee rate, the extra from its change; too low a rate or a confirmed payment is refused', async () => {
    const to = other(8);
    const sent = await run('wallet', 'send', to, '100000', '--fee-rate', '2', '--passphrase-file', passFile);
    expect([sent.code, sent.json.error]).toEqual([0, undefined]);
    const original = (await node.chain.getTransaction(sent.json.txid))!;
    const low = await run('wallet', 'bump', sent.json.txid, '--fee-rate', '2', '--passphrase-file', passFile);
    expect([low.code, low.json.error.code]).toEqual([1, 'INVALID_AMOUNT']);
    expect(low.json.error.hint).toMatch(/--fee-rate 2\.99[0-9] or more/); // the old fee plus 1 sat/vB of its own size: just under 3 sat/vB

    const r = await run('wallet', 'bump', sent.json.txid, '--fee-rate', '10', '--passphrase-file', passFile);
    expect([r.code, r.json.error]).toEqual([0, undefined]);
    expect(r.json).toMatchObject({ replaces: sent.json.txid, oldFee: sent.json.fee, feeRate: 10 });
    expect(r.json.fee).toBeGreaterThanOrEqual(r.json.vsize * 10);
    expect(r.json.change).toEqual({ address: sent.json.change.address, value: sent.json.change.value - (r.json.fee - sent.json.fee) });
    const [before, after] = await Promise.all([sent.json.txid, r.json.txid].map((t) => node.chain.getTransaction(t)));
    expect(before).toBeNull(); // replaced: gone from the mempool
    const outpoints = (t: typeof original) => t.inputs.map((i) => `${i.txid}:${i.vout}`);
    expect(outpoints(after!)).toEqual(outpoints(original));
    expect(after!.outputs.some((o) => o.value === 100_000n)).toBe(true);

    await node.chain.mine(1);
    const confirmed = await run('wallet', 'bump', r.json.txid, '--fee-rate', '20', '--passphrase-file', passFile);
    expect([confirmed.code, confirmed.json.error.code]).toEqual([2, 'TX_CHECK_FAILED']);
  });

  test('send --max: every spendable coin to one output, no change, the wallet left empty', async () => {
    const to = other(3);
    const coins = await utxos();
    const total = coins.reduce((s, c) => s + BigInt(c.value), 0n);
    const r = await run('wallet', 'send', to, '--max', '--fee-rate', '2', '--passphrase-file', passFile);
    expect([r.code, r.json.error]).toEqual([0, undefined]);
    expect(r.json.change).toBeNull();
    expect(BigInt(r.json.amount) + BigInt(r.json.fee)).toBe(total);
    const tx = await node.chain.getTransaction(r.json.txid);
    expect(tx!.inputs).toHaveLength(coins.length);
    expect(tx!.outputs).toHaveLength(1);
    expect(await utxos()).toEqual([]);
    await node.chain.mine(1);
  });


});
