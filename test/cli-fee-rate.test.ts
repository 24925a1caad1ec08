/**
 * Fractional fee rates from the command line, against a real btcd (min relay fee 1000
 * sat/kB): a payment at 1.5 sat/vB pays exactly the rate times its size rounded up, and a
 * bump is refused or taken exactly where BIP125 and btcd draw the line.
 */
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { networks, payments, Transaction } from 'bitcoinjs-lib';
import type { TestNode } from './helpers/node.js';
import { startCliWallet } from './helpers/cli-wallet.js';
import { ROOT, snapshot, swarmpay } from './helpers/cli.js';
import { tempDir } from './helpers/tmp.js';
import { FeeRate } from '../src/bitcoin/fee-rate.js';
import { estimateVbytes } from '../src/wallet/coin-select.js';

describe('fractional fee rates on a real btcd', () => {
  let node: TestNode;
  let tmp: ReturnType<typeof tempDir>;
  let a: string;
  let passFile: string;
  const run = (...args: string[]) => swarmpay(['--datadir', a, ...args]);
  /** An address of no wallet here. */
  const other = (n: number) => payments.p2wpkh({ hash: Buffer.alloc(20, n), network: networks.regtest }).address!;
  const send = (n: number, rate: string) => run('wallet', 'send', other(n), '100000', '--fee-rate', rate, '--passphrase-file', passFile);
  const bump = (txid: string, rate: string) => run('wallet', 'bump', txid, '--fee-rate', rate, '--passphrase-file', passFile);
  /** What swarmpay sized the transaction at before signing (the longest signatures): the size its fee is for. */
  const plannedVsize = async (txid: string) => {
    const tx = (await node.chain.getTransaction(txid))!;
    return { planned: estimateVbytes(tx.inputs.length, tx.outputs.map((o) => o.script)), actual: BigInt(Transaction.fromHex(tx.hex).virtualSize()), tx };
  };

  beforeAll(async () => {
    ({ node, tmp, datadir: a, passFile } = await startCliWallet());
    const addr = (await run('wallet', 'address')).json.address as string;
    expect((await run('node', 'mine', '101', '--to', addr)).code).toBe(0);
  });
  afterAll(async () => {
    await node?.stop();
    tmp?.remove();
  });

  test('wallet send --fee-rate 1.5: btcd takes it, the fee is exactly ceil(1.5 × vsize), and --json says 1.5', async () => {
    const r = await send(1, '1.5');
    expect([r.code, r.json.error]).toEqual([0, undefined]);
    expect(r.json.feeRate).toBe(1.5);
    const { planned, actual, tx } = await plannedVsize(r.json.txid);
    expect(tx.confirmations).toBe(0); // in btcd's mempool
    expect(BigInt(r.json.fee)).toBe((3n * planned + 1n) / 2n);
    // The signed transaction is no larger than planned: the node sees at least 1.5 sat/vB.
    expect(BigInt(r.json.fee) * 2n).toBeGreaterThanOrEqual(3n * actual);
    await node.chain.mine(1);
    expect((await node.chain.getTransaction(r.json.txid))!.confirmations).toBe(1);
    // The human form names the rate as given.
    const human = execFileSync(path.join(ROOT, 'bin', 'swarmpay'), ['--datadir', a, '--yes', 'wallet', 'send', other(2), '100000', '--fee-rate', '1.25', '--passphrase-file', passFile], { env: { ...process.env, NO_COLOR: '1' }, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    expect(human).toMatch(/\(1\.25 sat\/vB\)/);
    await node.chain.mine(1);
  });

  test('wallet bump from 1.5 to 2.25 is refused (BIP125: the new fee must add 1 sat/vB of its own size), naming the exact least rate, which btcd then takes', async () => {
    const sent = await send(3, '1.5');
    expect([sent.code, sent.json.error]).toEqual([0, undefined]);
    const { planned, actual } = await plannedVsize(sent.json.txid);
    const oldFee = BigInt(sent.json.fee);
    // The least rate r (sat/kvB) whose fee ceil(r × planned / 1000) reaches oldFee + 1 sat/vB × planned.
    const least = FeeRate.ofSatPerKvb(((oldFee + planned - 1n) * 1000n) / planned + 1n);
    expect(least.satPerKvb % 1000n).not.toBe(0n); // a fractional rate: whole sat/vB could not name it

    const before = snapshot(a);
    const low = await bump(sent.json.txid, '2.25');
    expect([low.code, low.json.error.code]).toEqual([1, 'INVALID_AMOUNT']);
    expect(low.json.error.hint).toContain(`--fee-rate ${least} or more`);
    expect(low.json.error.details).toEqual({ minFeeRate: least.toString() });
    // One step (0.001 sat/vB) below it is refused too; nothing changed either time.
    const below = await bump(sent.json.txid, FeeRate.ofSatPerKvb(least.satPerKvb - 1n).toString());
    expect([below.code, below.json.error.code]).toEqual([1, 'INVALID_AMOUNT']);
    expect(snapshot(a)).toEqual(before);
    expect((await node.chain.getTransaction(sent.json.txid))!.confirmations).toBe(0);

    const r = await bump(sent.json.txid, least.toString());
    expect([r.code, r.json.error]).toEqual([0, undefined]);
    expect(r.json.feeRate).toBe(least.toJSON());
    expect(BigInt(r.json.fee)).toBe(least.feeFor(planned));
    expect(BigInt(r.json.fee)).toBeGreaterThanOrEqual(oldFee + planned);
    expect(BigInt(r.json.fee) * 1000n).toBeGreaterThanOrEqual(least.satPerKvb * actual);
    expect(await node.chain.getTransaction(sent.json.txid)).toBeNull(); // replaced in btcd's mempool
    expect((await node.chain.getTransaction(r.json.txid))!.confirmations).toBe(0);
    await node.chain.mine(1);
  });

  test('wallet bump from 1.125 to 2.25: enough for BIP125 at this size, and btcd replaces it', async () => {
    const sent = await send(4, '1.125');
    expect([sent.code, sent.json.error]).toEqual([0, undefined]);
    const r = await bump(sent.json.txid, '2.25');
    expect([r.code, r.json.error]).toEqual([0, undefined]);
    expect(r.json).toMatchObject({ replaces: sent.json.txid, oldFee: sent.json.fee, feeRate: 2.25 });
    const { planned } = await plannedVsize(r.json.txid);
    expect(BigInt(r.json.fee)).toBe((9n * planned + 3n) / 4n);
    expect(await node.chain.getTransaction(sent.json.txid)).toBeNull();
    await node.chain.mine(1);
    expect((await node.chain.getTransaction(r.json.txid))!.confirmations).toBe(1);
  });

  test('a rate with more than 3 decimals, or below the relay minimum, is INVALID_AMOUNT before the passphrase, and nothing is sent', async () => {
    const before = snapshot(a);
    for (const [rate, hint] of [
      ['1.2345', /at most 3 decimals/],
      ['0.999', /--fee-rate 1 or more/],
      ['1e3', /exponent/],
      ['-2', /negative/],
    ] as const) {
      const r = await run('wallet', 'send', other(5), '100000', '--fee-rate', rate, '--passphrase-file', '/nonexistent');
      expect([rate, r.code, r.json.error.code]).toEqual([rate, 1, 'INVALID_AMOUNT']);
      expect(r.json.error.hint).toMatch(hint);
    }
    const env = await swarmpay(['--datadir', a, 'wallet', 'send', other(5), '100000', '--passphrase-file', '/nonexistent'], { SWARMPAY_FEE_RATE: '2.5001' });
    expect([env.code, env.json.error.code]).toEqual([1, 'INVALID_AMOUNT']);
    expect(env.json.error.message).toMatch(/SWARMPAY_FEE_RATE/);
    expect(snapshot(a)).toEqual(before);
  });

  test('SWARMPAY_FEE_RATE=1.75 is the rate of a send given none', async () => {
    const r = await swarmpay(['--datadir', a, 'wallet', 'send', other(6), '100000', '--passphrase-file', passFile], { SWARMPAY_FEE_RATE: '1.75' });
    expect([r.code, r.json.error]).toEqual([0, undefined]);
    expect(r.json.feeRate).toBe(1.75);
    const { planned } = await plannedVsize(r.json.txid);
    expect(BigInt(r.json.fee)).toBe((7n * planned + 3n) / 4n);
    await node.chain.mine(1);
  });
});
