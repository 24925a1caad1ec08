/**
 * The wallet from the command line against a real btcd: create, restore, fund, send, and
 * every bad input refused with its exit code and nothing changed.
 */
import { copyFileSync, mkdirSync, readFileSync, statSync, writeFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { startTestNode, type TestNode } from './helpers/node.js';
import { snapshot, spawnSwarmpay, swarmpay, type CliResult } from './helpers/cli.js';
import { tempDir } from './helpers/tmp.js';

const BIP84_MNEMONIC = 'abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about';

describe('wallet CLI on a real btcd', () => {
  let node: TestNode;
  let tmp: ReturnType<typeof tempDir>;
  let a: string; // datadir A: runs the node
  let b: string; // datadir B: reaches A's node over --rpc-url
  let passFile: string;
  let bArgs: string[];
  let funded: bigint;

  const aRun = (...args: string[]) => swarmpay(['--datadir', a, ...args]);
  const bRun = (...args: string[]) => swarmpay(['--datadir', b, ...bArgs, ...args]);
  const balanceOf = async (run: (...args: string[]) => Promise<CliResult>) => (await run('wallet', 'balance')).json as { confirmed: number; unconfirmed: number };

  beforeAll(async () => {
    node = await startTestNode();
    tmp = tempDir();
    a = node.datadir;
    b = path.join(tmp.dir, 'b');
    passFile = path.join(tmp.dir, 'pass');
    writeFileSync(passFile, 'a good long passphrase\n');
    bArgs = ['--rpc-url', node.state.rpcUrl, '--rpc-cookie', node.state.cookieFile];
  });
  afterAll(async () => {
    await node?.stop();
    tmp?.remove();
  });

  test('create writes the mnemonic to a 0600 file and never to the keystore or stdout', async () => {
    const mfile = path.join(tmp.dir, 'a.words');
    const r = await aRun('wallet', 'create', '--mnemonic-file', mfile, '--passphrase-file', passFile);
    expect(r.code).toBe(0);
    expect(r.json).toMatchObject({ network: 'regtest', restored: false, path: "m/84'/1'/0'" });
    expect(r.json.xpub).toMatch(/^tpub/);
    const words = readFileSync(mfile, 'utf8').trim();
    expect(words.split(' ')).toHaveLength(24);
    expect(statSync(mfile).mode & 0o777).toBe(0o600);
    expect(r.stdout + r.stderr).not.toContain(words.split(' ').slice(0, 3).join(' '));
    expect(readFileSync(path.join(a, 'regtest', 'keystore.json'), 'utf8')).not.toContain(words.split(' ')[0]! + ' ');
  });

  test('restore from a mnemonic file gives the BIP84 vector account on mainnet, without any node', async () => {
    const mfile = path.join(tmp.dir, 'bip84.words');
    writeFileSync(mfile, BIP84_MNEMONIC + '\n');
    const dir = path.join(tmp.dir, 'restored');
    const r = await swarmpay(['--datadir', dir, '--network', 'mainnet', 'wallet', 'create', '--restore', '--mnemonic-file', mfile, '--passphrase-file', passFile]);
    expect(r.code).toBe(0);
    // BIP84's account 0 zpub, in the standard xpub encoding.
    expect(r.json).toMatchObject({ restored: true, path: "m/84'/0'/0'", xpub: 'xpub6CatWdiZiodmUeTDp8LT5or8nmbKNcuyvz7WyksVFkKB4RHwCD3XyuvPEbvqAQY3rAPshWcMLoP2fMFMKHPJ4ZeZXYVUhLv1VMrjPC7PW6V' });
    const info = await swarmpay(['--datadir', dir, '--network', 'mainnet', 'wallet', 'info']);
    expect(info.json).toMatchObject({ network: 'mainnet', path: "m/84'/0'/0'" });
  });

  test('B restores a wallet and reaches A\'s node over --rpc-url and --rpc-cookie', async () => {
    const mfile = path.join(tmp.dir, 'b.words');
    writeFileSync(mfile, BIP84_MNEMONIC);
    expect((await bRun('wallet', 'create', '--restore', '--mnemonic-file', mfile, '--passphrase-file', passFile)).code).toBe(0);
    const r = await bRun('wallet', 'balance');
    expect(r.code).toBe(0);
    expect(r.json).toMatchObject({ confirmed: 0, unconfirmed: 0 });
  });

  test('node mine --to funds the wallet; the balance is exactly what the faucet paid', async () => {
    const addr = (await aRun('wallet', 'address')).json.address as string;
    expect(addr).toMatch(/^bcrt1q/);
    const mined = await aRun('node', 'mine', '3', '--to', addr);
    expect(mined.code).toBe(0);
    expect(mined.json.blocks).toBe(3);
    expect(mined.json.paid.address).toBe(addr);
    funded = BigInt(mined.json.paid.sats);
    expect(funded).toBeGreaterThan(0n);
    const bal = await balanceOf(aRun);
    expect(BigInt(bal.confirmed)).toBe(funded);
    // The funded address is used now: the next one is offered.
    expect((await aRun('wallet', 'address')).json.address).not.toBe(addr);
  });

  test('send pays B, waits for a confirmation mined meanwhile, and the balances add up to the sat', async () => {
    const to = (await bRun('wallet', 'address')).json.address as string;
    const sending = spawnSwarmpay(['--datadir', a, 'wallet', 'send', to, '1000000', '--fee-rate', '3', '--passphrase-file', passFile, '--wait', '1']);
    // Mine once the payment is in the mempool.
    for (let i = 0; i < 200 && (await node.chain.utxos([to])).length === 0; i++) await new Promise((r) => setTimeout(r, 50));
    await node.chain.mine(1);
    const r = await sending.done;
    expect(r.code).toBe(0);
    expect(r.json).toMatchObject({ to, amount: 1000000, feeRate: 3, confirmations: 1 });
    expect(r.json.fee).toBeGreaterThanOrEqual(r.json.vsize * 3);
    expect(BigInt((await balanceOf(bRun)).confirmed)).toBe(1_000_000n);
    expect(BigInt((await balanceOf(aRun)).confirmed)).toBe(funded - 1_000_000n - BigInt(r.json.fee));
    const tx = await node.chain.getTransaction(r.json.txid);
    expect(tx!.inputs.every((i) => i.sequence === 0xfffffffd)).toBe(true); // RBF signalled
  });

  describe('bad input: clear error, its exit code, nothing changed, nothing sent', () => {
    let before: Record<string, string>;
    let balanceBefore: { confirmed: number; unconfirmed: number };
    let to: string;
    beforeAll(async () => {
      to = (await bRun('wallet', 'address')).json.address;
    });
    beforeEach(async () => {
      before = snapshot(a);
      balanceBefore = await balanceOf(aRun);
    });
    afterEach(async () => {
      expect(snapshot(a)).toEqual(before);
      expect(await balanceOf(aRun)).toEqual(balanceBefore);
    });

    const refused = (r: CliResult, exit: number, code: string) => {
      expect({ exit: r.code, code: r.json?.error?.code }).toEqual({ exit, code });
      expect(r.json.error.message).toBeTruthy();
    };
    const send = (address: string, sats: string, ...more: string[]) => aRun('wallet', 'send', address, sats, '--passphrase-file', passFile, ...more);

    test('a mainnet address on regtest', async () => refused(await send('bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu', '10000'), 2, 'WRONG_NETWORK'));
    test('a tb1 address on mainnet', async () => {
      const dir = path.join(tmp.dir, 'restored');
      const r = await swarmpay(['--datadir', dir, '--network', 'mainnet', 'wallet', 'send', 'tb1qw508d6qejxtdg4y5r3zarvary0c5xw7kxpjzsx', '10000', '--fee-rate', '1']);
      refused(r, 2, 'WRONG_NETWORK');
      expect(r.json.error.hint).toMatch(/--network testnet/);
    });
    test('a malformed address', async () => refused(await send('bcrt1qnotanaddress', '10000'), 1, 'INVALID_ADDRESS'));
    test.each(['0', '-5', '1.5', '10btc'])('amount %s', async (sats) => refused(await send(to, sats), 1, 'INVALID_AMOUNT'));
    test('an amount above the balance', async () => {
      const r = await send(to, String(funded * 2n));
      refused(r, 2, 'INSUFFICIENT_FUNDS');
    });
    test('a dust output', async () => refused(await send(to, '100'), 2, 'DUST_OUTPUT'));
    test('a fee rate above the safety cap', async () => refused(await send(to, '10000', '--fee-rate', '5000'), 2, 'FEE_TOO_HIGH'));
    test('a fee rate that is not a number', async () => refused(await send(to, '10000', '--fee-rate', 'fast'), 1, 'INVALID_AMOUNT'));
    test('a wrong passphrase', async () => {
      const wrong = path.join(tmp.dir, 'wrong');
      writeFileSync(wrong, 'not the passphrase');
      refused(await aRun('wallet', 'send', to, '10000', '--passphrase-file', wrong), 5, 'WRONG_PASSPHRASE');
    });
    test('no passphrase and no terminal to ask on', async () => refused(await aRun('wallet', 'send', to, '10000'), 5, 'KEYSTORE_LOCKED'));

    describe('a damaged keystore', () => {
      const ks = () => path.join(a, 'regtest', 'keystore.json');
      let original: Buffer;
      beforeEach(() => {
        original = readFileSync(ks());
      });
      afterEach(() => writeFileSync(ks(), original)); // runs before the outer check that nothing changed

      test('truncated', async () => {
        writeFileSync(ks(), original.subarray(0, original.length - 40));
        const damaged = readFileSync(ks());
        refused(await send(to, '10000'), 5, 'KEYSTORE_CORRUPT');
        expect(readFileSync(ks())).toEqual(damaged);
      });
      test('a flipped byte', async () => {
        const copy = Buffer.from(original);
        const at = copy.indexOf('"ct": "') + 10;
        copy[at] = copy[at] === 0x41 ? 0x42 : 0x41;
        writeFileSync(ks(), copy);
        refused(await send(to, '10000'), 5, 'KEYSTORE_CORRUPT');
        expect(readFileSync(ks())).toEqual(copy);
      });
    });

    test('a keystore of another network', async () => {
      const dir = path.join(tmp.dir, 'copied');
      mkdirSync(path.join(dir, 'testnet'), { recursive: true });
      copyFileSync(path.join(a, 'regtest', 'keystore.json'), path.join(dir, 'testnet', 'keystore.json'));
      const r = await swarmpay(['--datadir', dir, '--network', 'testnet', 'wallet', 'info']);
      refused(r, 2, 'KEYSTORE_NETWORK');
      expect(r.json.error.hint).toMatch(/--network regtest/);
    });

    test('no wallet in the datadir', async () => refused(await swarmpay(['--datadir', path.join(tmp.dir, 'empty'), 'wallet', 'info']), 3, 'WALLET_NOT_FOUND'));

    test('the node not running', async () => {
      const dir = path.join(tmp.dir, 'nonode');
      mkdirSync(dir, { recursive: true });
      refused(await swarmpay(['--datadir', a, '--rpc-url', 'http://127.0.0.1:1/', '--rpc-cookie', node.state.cookieFile, 'wallet', 'balance']), 4, 'NODE_UNREACHABLE');
      refused(await swarmpay(['--datadir', dir, 'wallet', 'balance']), 4, 'NODE_UNREACHABLE');
    });

    test('the node refusing our RPC credentials', async () => {
      const cookie = path.join(tmp.dir, 'bad.cookie');
      writeFileSync(cookie, 'someone:wrongpassword');
      refused(await swarmpay(['--datadir', a, '--rpc-url', node.state.rpcUrl, '--rpc-cookie', cookie, 'wallet', 'balance']), 4, 'RPC_AUTH');
    });

    test('creating over an existing wallet', async () => {
      const r = await aRun('wallet', 'create', '--mnemonic-file', path.join(tmp.dir, 'again.words'), '--passphrase-file', passFile);
      refused(r, 2, 'KEYSTORE_EXISTS');
      expect(existsSync(path.join(tmp.dir, 'again.words'))).toBe(false);
    });
  });

  describe('create refuses bad input and writes nothing', () => {
    test('a short passphrase', async () => {
      const dir = path.join(tmp.dir, 'weak');
      const weak = path.join(tmp.dir, 'weak.pass');
      writeFileSync(weak, 'short');
      const r = await swarmpay(['--datadir', dir, 'wallet', 'create', '--mnemonic-file', path.join(tmp.dir, 'weak.words'), '--passphrase-file', weak]);
      expect([r.code, r.json.error.code]).toEqual([2, 'WEAK_PASSPHRASE']);
      expect(snapshot(dir)).toEqual({});
      expect(existsSync(path.join(tmp.dir, 'weak.words'))).toBe(false);
    });
    test('a mnemonic with a bad checksum', async () => {
      const dir = path.join(tmp.dir, 'badwords');
      const words = path.join(tmp.dir, 'bad.words');
      writeFileSync(words, 'abandon '.repeat(11) + 'abandon');
      const r = await swarmpay(['--datadir', dir, 'wallet', 'create', '--restore', '--mnemonic-file', words, '--passphrase-file', passFile]);
      expect([r.code, r.json.error.code]).toEqual([2, 'INVALID_MNEMONIC']);
      expect(snapshot(dir)).toEqual({});
    });
    test('a new mnemonic with nowhere safe to show it', async () => {
      const dir = path.join(tmp.dir, 'nowhere');
      const r = await swarmpay(['--datadir', dir, 'wallet', 'create', '--passphrase-file', passFile]);
      expect([r.code, r.json.error.code]).toEqual([1, 'USAGE']);
      expect(snapshot(dir)).toEqual({});
    });
  });
});
