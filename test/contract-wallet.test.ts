/**
 * src/wallet/contract-wallet.ts: what the contract protocols (channel, escrow) get of the
 * wallet. They must reach no seed and no mnemonic, yet keep signing with the keys their
 * stored contracts were made with, and their keystore writes must keep the wallet intact.
 */
import { readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { networks, payments } from 'bitcoinjs-lib';
import { SwarmpayError } from '../src/errors.js';
import { contractContext, type ContractContext } from '../src/wallet/contract-wallet.js';
import { CHANNEL_CHAIN, ESCROW_CHAIN, contractKey } from '../src/wallet/hd.js';
import { unlockWallet } from '../src/wallet/wallet.js';
import { passphraseUnlocker } from '../src/keystore/keystore.js';
import { startTestNode, type TestNode } from './helpers/node.js';
import { tempDir } from './helpers/tmp.js';
import { TEST_PASSPHRASE, fund, testWallet, type TestWallet } from './helpers/wallets.js';
import { FeeRate } from '../src/bitcoin/fee-rate.js';
import { swarmpay } from './helpers/cli.js';

/** An address of no wallet here. */
const ADDRESS_ELSEWHERE = payments.p2wpkh({ hash: Buffer.alloc(20, 3), network: networks.regtest }).address ?? '';

/** Every value reachable from `root` through properties, getters included (what a protocol's code can reach). */
function reachable(root: unknown): unknown[] {
  const seen = new Set<unknown>();
  const out: unknown[] = [];
  const walk = (v: unknown, depth: number) => {
    out.push(v);
    if (typeof v !== 'object' || v === null || seen.has(v) || depth > 8 || Buffer.isBuffer(v)) return;
    seen.add(v);
    for (let o: object | null = v; o !== null && o !== Object.prototype; o = Object.getPrototypeOf(o) as object | null) {
      for (const k of Object.getOwnPropertyNames(o)) {
        if (k === 'constructor') continue;
        let x: unknown;
        try {
          x = (v as Record<string, unknown>)[k];
        } catch {
          continue;
        }
        if (typeof x !== 'function') walk(x, depth + 1);
      }
    }
  };
  walk(root, 0);
  return out;
}

describe('the contract wallet', () => {
  let node: TestNode;
  let tmp: ReturnType<typeof tempDir>;
  let w: TestWallet;
  let ctx: ContractContext;
  let mnemonic: string;

  beforeAll(async () => {
    node = await startTestNode();
    tmp = tempDir();
    w = await testWallet(path.join(tmp.dir, 'w'));
    mnemonic = (w.session.secret.wallet as { mnemonic: string }).mnemonic;
    ctx = contractContext(w.session, w.seed, node.chain, w.networkDir);
  }, 120_000);
  afterAll(async () => {
    await node?.stop();
    tmp?.remove();
  });

  test('no seed, no mnemonic and no account private key is reachable from what a protocol holds', () => {
    const seedHex = Buffer.from(w.seed).toString('hex');
    for (const v of reachable(ctx)) {
      if (typeof v === 'string') expect(v.includes(mnemonic.split(' ').slice(0, 3).join(' '))).toBe(false);
      if (v instanceof Uint8Array) expect(Buffer.from(v).toString('hex')).not.toBe(seedHex);
    }
    expect(Object.keys(ctx.session.secret)).not.toContain('wallet');
    expect(JSON.stringify(ctx.session.secret)).not.toContain(mnemonic.split(' ')[0] + ' ' + mnemonic.split(' ')[1]);
  });

  test('contract keys are the ones stored contracts were made with (same derivation as before)', () => {
    for (const i of [0, 1, 77]) {
      expect(ctx.wallet.key('channel', i)).toEqual(contractKey(w.seed, 'regtest', CHANNEL_CHAIN, i));
      expect(ctx.wallet.key('escrow', i)).toEqual(contractKey(w.seed, 'regtest', ESCROW_CHAIN, i));
    }
  });

  test("a protocol's keystore write keeps the wallet: the keystore still unlocks to the same seed", async () => {
    await ctx.session.update((s) => {
      s.channels = { probe: { written: true } };
    });
    expect(ctx.session.secret.channels).toEqual({ probe: { written: true } });
    const again = await unlockWallet(w.networkDir, 'regtest', passphraseUnlocker(TEST_PASSPHRASE), { checkpoint: false });
    expect(Buffer.from(again.seed).equals(Buffer.from(w.seed))).toBe(true);
    expect(again.session.secret.channels).toEqual({ probe: { written: true } });
  });

  test('a protocol that writes the wallet key is refused and nothing is written', async () => {
    const before = JSON.stringify(w.session.secret);
    const refused = ctx.session.update((s) => {
      s.wallet = { mnemonic: 'abandon '.repeat(11) + 'about' };
    });
    await expect(refused).rejects.toThrow(SwarmpayError);
    await expect(refused).rejects.toMatchObject({ code: 'INTERNAL' });
    expect(JSON.stringify(w.session.secret)).toBe(before);
  });

  test('updates that delete every key they see, run at once, one throwing, one hiding a wallet key: the seed survives', async () => {
    await Promise.all([
      ctx.session.update((s) => {
        s.a = 1;
      }),
      ctx.session.update((s) => {
        for (const k of Object.keys(s)) delete s[k];
        s.b = 2;
      }),
      ctx.session.update((s) => {
        s.c = 3;
        throw new Error('refused');
      }).catch(() => undefined),
      ctx.session.update((s) => {
        Object.defineProperty(s, 'wallet', { value: { mnemonic: 'x' }, enumerable: false });
      }).catch((e: Error) => e),
    ]);
    const again = await unlockWallet(w.networkDir, 'regtest', passphraseUnlocker(TEST_PASSPHRASE), { checkpoint: false });
    expect(Buffer.from(again.seed).equals(Buffer.from(w.seed))).toBe(true);
    expect(again.session.secret.b).toBe(2);
    expect(again.session.secret.c).toBeUndefined();
  });

  test('fund pays contracts only: an output that is not P2WSH (the wallet paying out elsewhere) is refused', async () => {
    await fund(node.chain, w, 1_000_000n);
    const p2wpkhAddress = payments.p2wpkh({ hash: Buffer.alloc(20, 7), network: networks.regtest }).address ?? '';
    await expect(ctx.wallet.fund([{ address: p2wpkhAddress, amount: 20_000n }], FeeRate.ofSatPerVb(2n), async (tx) => tx)).rejects.toMatchObject({ code: 'INTERNAL' });
  });

  test('fund signs a payment whose first outputs are the ones asked for, from the wallet, without broadcasting it', async () => {
    const a = { address: payments.p2wsh({ hash: Buffer.alloc(32, 9), network: networks.regtest }).address ?? '', amount: 20_000n };
    const tx = await ctx.wallet.fund([a, { ...a, amount: 30_000n }], FeeRate.ofSatPerVb(2n), async (tx) => tx);
    expect(await node.chain.getTransaction(tx.txid)).toBeNull();
    await node.chain.broadcast(tx.hex);
    const seen = await node.chain.getTransaction(tx.txid);
    expect(seen?.outputs.slice(0, 2).map((o) => o.value)).toEqual([20_000n, 30_000n]);
  });
});

describe('a contract funding holds its coins until it is broadcast', () => {
  let node: TestNode;
  let tmp: ReturnType<typeof tempDir>;

  beforeAll(async () => {
    node = await startTestNode();
    tmp = tempDir();
  }, 120_000);
  afterAll(async () => {
    await node?.stop();
    tmp?.remove();
  });

  test('a wallet send while a funding waits (for a confirmation, a store, a peer) picks another coin, and both go through', async () => {
    // The wallet in the node's own datadir, so that the command line reaches the node as it is.
    const w = await testWallet(node.datadir);
    const ctx = contractContext(w.session, w.seed, node.chain, w.networkDir);
    await fund(node.chain, w, 1_000_000n);
    await fund(node.chain, w, 600_000n);
    const passFile = path.join(tmp.dir, 'pass');
    writeFileSync(passFile, TEST_PASSPHRASE + '\n');
    const contract = payments.p2wsh({ hash: Buffer.alloc(32, 5), network: networks.regtest }).address ?? '';
    const { funding, send } = await ctx.wallet.fund([{ address: contract, amount: 500_000n }], FeeRate.ofSatPerVb(2n), async (funding) => {
      // Another command, in another process, pays meanwhile: a coin the funding took is not for it.
      const send = await swarmpay(['--datadir', node.datadir, 'wallet', 'send', ADDRESS_ELSEWHERE, '300000', '--fee-rate', '2', '--passphrase-file', passFile]);
      expect([send.code, send.json.error]).toEqual([0, undefined]);
      await node.chain.broadcast(funding.hex);
      return { funding, send: send.json.txid as string };
    });
    const inputsOf = async (txid: string) => (await node.chain.getTransaction(txid))!.inputs.map((i) => `${i.txid}:${i.vout}`);
    const [fundingInputs, sendInputs] = [await inputsOf(funding.txid), await inputsOf(send)];
    expect(fundingInputs.filter((o) => sendInputs.includes(o))).toEqual([]);
    expect(readdirSync(path.join(w.networkDir, 'coin-locks'))).toEqual([]);
  });
});
