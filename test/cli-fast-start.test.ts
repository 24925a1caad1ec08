/**
 * Fast start (issue 15): a command loads what it needs, no more. What a process loaded is
 * read from a real run of the CLI on ES modules (`node bin/swarmpay`: the module bin/swarmpay
 * also is, which it runs when it has no start-up snapshot for this Node) with
 * test/helpers/loaded-modules.mjs preloaded, so
 * a static import added later that drags the Bitcoin libraries back into `--version` fails
 * here. When it runs the bundle (npm run build), a file of it counts as every source esbuild
 * put in it (dist/bundle/meta.json). The snapshot's own start is test/cli-snapshot.test.ts's.
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { mnemonicToSeedSync } from 'bip39';
import { payments } from 'bitcoinjs-lib';
import { bitcoinjsNetwork } from '../src/bitcoin/network.js';
import { FAUCET_ADDRESS, faucetKey } from '../src/wallet/faucet.js';
import { accountFromXpub, accountNode, accountPath, accountXpub, deriveAddress, CHANGE, RECEIVE } from '../src/wallet/hd.js';
import { bip32 } from './helpers/bip32.js';
import { mnemonicToSeed } from '../src/wallet/mnemonic.js';
import { ROOT } from './helpers/cli.js';
import { startTestNode, type TestNode } from './helpers/node.js';
import { tempDir } from './helpers/tmp.js';
import { fund, testWallet } from './helpers/wallets.js';

const BIN = path.join(ROOT, 'bin', 'swarmpay');
const PRELOAD = path.join(ROOT, 'test', 'helpers', 'loaded-modules.mjs');

/** What a Bitcoin operation needs and a program's definition does not: each is tens of ms to load. */
const BITCOIN = ['bitcoinjs-lib', 'tiny-secp256k1', 'bip39', 'ecpair'];
/** What only a signature, a new mnemonic or the faucet's signer needs (the seed's keys are derived without them). */
const SECRET_SIDE = ['bip39', 'tiny-secp256k1', 'ecpair'];
/** The bip32 library is the tests' reference only: no command may load it. */
const REFERENCE_ONLY = 'bip32';
/** Loaded only to ask a question at a terminal. */
const PROMPTS = '@inquirer/prompts';

const tmp = tempDir('swarmpay-fast-start-');
afterAll(() => tmp.remove());

let runs = 0;

/** The sources in each file of the bundle, by file name (chunk names are content hashes, unique). */
const bundled = new Map<string, string[]>();
const meta = path.join(ROOT, 'dist', 'bundle', 'meta.json');
if (existsSync(meta)) {
  const { outputs } = JSON.parse(readFileSync(meta, 'utf8')) as { outputs: Record<string, { inputs: Record<string, unknown> }> };
  for (const [file, o] of Object.entries(outputs)) bundled.set(path.basename(file), Object.keys(o.inputs));
}

/** A loaded file as the sources it holds: itself, or a bundle file's inputs. */
function sourcesOf(loaded: string): string[] {
  const file = /\/dist\/bundle\/([^/]+\.js)$/.exec(loaded)?.[1];
  return file === undefined ? [loaded] : (bundled.get(file) ?? [loaded]);
}

/** Runs swarmpay ARGS and returns its exit code, its stdout and the npm packages it loaded. */
function packagesLoadedBy(args: string[]): Promise<{ code: number; stdout: string; packages: Set<string> }> {
  const log = path.join(tmp.dir, `loaded-${++runs}.log`);
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', PRELOAD, BIN, ...args], { env: { ...process.env, NO_COLOR: '1', SWARMPAY_LOADED_LOG: log, SWARMPAY_DATADIR: path.join(tmp.dir, 'home') }, timeout: 60_000 }, (err, stdout) => {
      const lines = (existsSync(log) ? readFileSync(log, 'utf8').split('\n') : []).flatMap(sourcesOf);
      const packages = new Set(lines.map((l) => /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(l)?.[1]).filter((p): p is string => p !== undefined));
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, packages });
    });
  });
}

describe('what a command loads', () => {
  test.each([
    [['--version'], 0],
    [['--help'], 0],
    [['wallet', '--help'], 0],
    [['channel', 'pay', '--help'], 0],
    [['help', 'escrow', 'accept'], 0],
    [['completion', 'bash'], 0],
    [['wallet', 'balance', '--no-such-flag'], 1],
  ])('swarmpay %j loads commander, not the Bitcoin libraries', async (args, code) => {
    const r = await packagesLoadedBy(args);
    expect(r.code).toBe(code);
    // The log works: the program's own parser was seen.
    expect(r.packages.has('commander')).toBe(true);
    expect(BITCOIN.filter((p) => r.packages.has(p))).toEqual([]);
    expect(r.packages.has(REFERENCE_ONLY)).toBe(false);
    expect(r.packages.has(PROMPTS)).toBe(false);
  });

  test('a command that reads the wallet loads neither bip39 (only making or checking a mnemonic needs it) nor the prompts', async () => {
    // No wallet in this datadir, no node: the command fails after loading what it runs with.
    const r = await packagesLoadedBy(['--rpc-url', 'http://127.0.0.1:9/', '--rpc-cookie', path.join(tmp.dir, 'no-cookie'), '--tpm', 'none', 'wallet', 'balance']);
    expect(r.code).not.toBe(0);
    expect(r.packages.has('bitcoinjs-lib')).toBe(true);
    expect(r.packages.has('bip39')).toBe(false);
    expect(r.packages.has(PROMPTS)).toBe(false);
  });

  describe('against a running node', () => {
    let node: TestNode;
    beforeAll(async () => {
      node = await startTestNode();
    }, 120_000);
    afterAll(() => node?.stop());

    test('wallet balance reads the xpub, scans both chains past a paid address and asks the node, without the curve library, bip32 or ecpair at work', async () => {
      const w = await testWallet(node.datadir);
      await fund(node.chain, w, 70_000n);
      const r = await packagesLoadedBy(['--datadir', node.datadir, '--tpm', 'none', '--json', 'wallet', 'balance']);
      expect(r.code).toBe(0);
      expect(JSON.parse(r.stdout)).toMatchObject({ confirmed: 70_000, unconfirmed: 0, utxos: 1 });
      expect(SECRET_SIDE.filter((p) => r.packages.has(p))).toEqual([]);
      expect(r.packages.has(REFERENCE_ONLY)).toBe(false);
      expect(r.packages.has(PROMPTS)).toBe(false);
    }, 60_000);
  });
});

describe('the native paths agree with the libraries they replace', () => {
  test('an address\'s key is the bip32 library\'s derivation of the same path, from an xpub or a seed, on every network and both chains', () => {
    const seed = Buffer.alloc(64, 7);
    for (const network of ['mainnet', 'testnet', 'regtest'] as const) {
      const xpub = accountXpub(seed, network);
      const fromSeed = accountNode(seed, network);
      const theirs = bip32().fromSeed(seed, bitcoinjsNetwork(network)).derivePath(accountPath(network));
      expect(xpub).toBe(theirs.neutered().toBase58());
      for (const account of [accountFromXpub(xpub, network), fromSeed]) {
        for (const chain of [RECEIVE, CHANGE]) {
          for (let index = 0; index < 25; index++) {
            const a = deriveAddress(account, network, chain, index);
            for (const node of [fromSeed.derive(chain).derive(index), theirs.derive(chain).derive(index)]) expect(Buffer.from(a.pubkey).toString('hex')).toBe(Buffer.from(node.publicKey).toString('hex'));
          }
        }
      }
    }
  });

  test('the faucet\'s address, written out, is its key\'s', () => {
    expect(FAUCET_ADDRESS).toBe(payments.p2wpkh({ pubkey: faucetKey().publicKey, network: bitcoinjsNetwork('regtest') }).address);
  });

  test.each([
    ['', 'abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about'],
    ['TREZOR', 'legal winner thank year wave sausage worth useful legal winner thank yellow'],
    // NFKD: the composed "é" and "Ａ" (full width) normalise before hashing, as BIP39 says.
    ['caf\u00e9 \uff21', 'zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo wrong'],
  ])('the seed of passphrase %j is bip39\'s', (passphrase, mnemonic) => {
    expect(Buffer.from(mnemonicToSeed(mnemonic, passphrase)).toString('hex')).toBe(Buffer.from(mnemonicToSeedSync(mnemonic, passphrase)).toString('hex'));
  });
});
