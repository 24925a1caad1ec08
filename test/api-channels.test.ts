/**
 * The channel API a program keeps running with: several channels from one funding
 * (Channels.openMany) and a connection kept open across runs of payments
 * (Channels.connect, ChannelSession), on a real btcd, the payee served in this process.
 */
import path from 'node:path';
import { startTestNode, type TestNode } from './helpers/node.js';
import { tempDir } from './helpers/tmp.js';
import { TEST_PASSPHRASE } from './helpers/wallets.js';
import { expectCode } from './helpers/expect.js';
import { SCRYPT_N_MIN } from '../src/keystore/crypto.js';
import { faucetPay } from '../src/wallet/faucet.js';
import { MAX_CHANNELS_PER_FUNDING, Swarmpay, stoppedRun, type ChannelSpec, type Server, type Wallet } from '../src/index.js';
import { FeeRate } from '../src/bitcoin/fee-rate.js';
import { estimateVbytes } from '../src/wallet/coin-select.js';
import { Transaction } from 'bitcoinjs-lib';

describe('channels through the API: one funding for many, a session kept open', () => {
  let node: TestNode;
  let tmp: ReturnType<typeof tempDir>;
  const apis: Swarmpay[] = [];
  let payer: Wallet;
  let payee: Wallet;
  let server: Server;

  const wallet = async (name: string): Promise<Wallet> => {
    const api = new Swarmpay({ datadir: path.join(tmp.dir, name), chain: 'btcd', rpcUrl: node.state.rpcUrl, rpcCookie: node.state.cookieFile, tpm: 'none' });
    apis.push(api);
    api.createWallet({ passphrase: TEST_PASSPHRASE, scrypt: { N: SCRYPT_N_MIN, r: 8, p: 1 } });
    if (name === 'payer') {
      await faucetPay(node.chain, (await api.address()).address, 50_000_000n);
      await node.chain.mine(1);
    }
    return api.unlock({ passphrase: TEST_PASSPHRASE });
  };
  const to = (capacity: bigint): ChannelSpec => ({ peer: server.listening!, peerKey: server.peerKey, capacity });

  beforeAll(async () => {
    node = await startTestNode();
    tmp = tempDir();
    payer = await wallet('payer');
    payee = await wallet('payee');
    server = await payee.channels.serve({ listen: { tcp: '127.0.0.1:0' } });
  });
  afterAll(async () => {
    await server?.stop();
    await Promise.all(apis.map((a) => a.close()));
    await node?.stop();
    tmp?.remove();
  });

  test('openMany funds several channels with one transaction, each open at its payee', async () => {
    const r = await payer.channels.openMany([to(100_000n), to(200_000n), to(300_000n)], FeeRate.ofSatPerVb(2n));
    expect(r.channels.map((c) => c.capacity)).toEqual([100_000n, 200_000n, 300_000n]);
    expect(r.channels.every((c) => c.role === 'payer' && c.status === 'open')).toBe(true);
    const [funding] = new Set(r.channels.map((c) => c.fundingTxid));
    expect(new Set(r.channels.map((c) => c.fundingTxid)).size).toBe(1);
    expect(r.fundingFee).toBeGreaterThan(0n);
    const tx = (await node.chain.getTransaction(funding!))!;
    for (const c of [100_000n, 200_000n, 300_000n]) expect(tx.outputs.filter((o) => o.value === c)).toHaveLength(1);
    const theirs = (await payee.channels.list()).channels.map((c) => c.id);
    expect(theirs).toEqual(expect.arrayContaining(r.channels.map((c) => c.id)));
  });

  test('openMany with wait returns once the funding has the confirmations the payee asked for', async () => {
    let done = false;
    const opening = payer.channels.openMany([to(50_000n), to(60_000n)], FeeRate.ofSatPerVb(2n), { wait: true }).finally(() => (done = true));
    while (!done) {
      await node.chain.mine(1);
      await new Promise((r) => setTimeout(r, 300));
    }
    for (const c of (await opening).channels) expect(c.fundingConfirmations).toBeGreaterThanOrEqual(c.confirmationsWanted);
  });

  test('openMany refuses none, or more than one funding holds, before anything is funded', async () => {
    const before = (await payer.channels.list()).channels.length;
    await expectCode(payer.channels.openMany([], FeeRate.ofSatPerVb(2n)), 'USAGE');
    await expectCode(payer.channels.openMany(new Array<ChannelSpec>(MAX_CHANNELS_PER_FUNDING + 1).fill(to(10_000n)), FeeRate.ofSatPerVb(2n)), 'USAGE');
    expect((await payer.channels.list()).channels).toHaveLength(before);
  });

  test('a funding too large for the payee to take (many small coins) is refused before anything is stored or paid', async () => {
    const small = await wallet('small-coins');
    const api = apis[apis.length - 1]!;
    const address = (await api.address()).address;
    for (let i = 0; i < 150; i++) await faucetPay(node.chain, address, 5_000n + BigInt(i));
    await node.chain.mine(1);
    const before = await api.balance();
    await expectCode(small.channels.open({ ...to(700_000n), feeRate: FeeRate.ofSatPerVb(2n) }), 'TX_CHECK_FAILED');
    expect((await small.channels.list()).channels).toHaveLength(0);
    expect(await api.balance()).toEqual(before);
  });

  test('a channel at fractional rates: funded at 1.5 sat/vB, its close bumped to 3.125 by CPFP; btcd takes both, and the record keeps the rate exactly', async () => {
    const rate = FeeRate.parse('1.5');
    const { channels: [ch], fundingFee } = await payer.channels.openMany([to(400_000n)], rate);
    const funding = (await node.chain.getTransaction(ch!.fundingTxid!))!;
    const planned = estimateVbytes(funding.inputs.length, funding.outputs.map((o) => o.script));
    expect(fundingFee).toBe(rate.feeFor(planned));
    expect(fundingFee).toBe((3n * planned + 1n) / 2n);
    await node.chain.mine(1);
    await payer.channels.pay(ch!.id, 50_000n);
    const { closeTxid } = await payer.channels.close(ch!.id);
    const bumped = await payer.channels.bump(ch!.id, FeeRate.parse('3.125'));
    expect([bumped.id, bumped.feeRate.toString(), JSON.stringify({ feeRate: bumped.feeRate })]).toEqual([ch!.id, '3.125', '{"feeRate":3.125}']);
    const [close, child] = await Promise.all([closeTxid, bumped.bumpTxid].map(async (t) => (await node.chain.getTransaction(t))!));
    expect(child!.inputs.some((i) => i.txid === closeTxid)).toBe(true);
    const vsize = (hex: string) => BigInt(Transaction.fromHex(hex).virtualSize());
    const closeFee = 400_000n - close!.outputs.reduce((a, o) => a + o.value, 0n);
    const pkg = FeeRate.paidBy(closeFee + bumped.fee, vsize(close!.hex) + vsize(child!.hex));
    expect(pkg.compare(FeeRate.parse('3.125'))).toBeGreaterThanOrEqual(0);
    expect((await payer.channels.show(ch!.id)).bumps).toEqual([expect.objectContaining({ txid: bumped.bumpTxid, feeRate: '3.125' })]);
    await node.chain.mine(1);
    expect((await node.chain.getTransaction(bumped.bumpTxid))!.confirmations).toBe(1);
  });

  test('a program paying 0 or a negative amount is refused before anything is sent, as a user typing it is', async () => {
    const { channels: [ch] } = await payer.channels.openMany([to(100_000n)], FeeRate.ofSatPerVb(2n));
    await node.chain.mine(1);
    for (const sats of [-5n, 0n]) await expectCode(payer.channels.pay(ch!.id, sats), 'INVALID_AMOUNT');
    const session = await payer.channels.connect(ch!.id);
    await expectCode(session.pay([10n, -10n, 10n]), 'INVALID_AMOUNT');
    await session.disconnect();
    expect((await payer.channels.show(ch!.id)).paid).toBe(0n);
  });

  test('a session pays run after run over one connection, then closes the channel', async () => {
    const { channels: [ch] } = await payer.channels.openMany([to(1_000_000n)], FeeRate.ofSatPerVb(2n));
    await node.chain.mine(1);
    const s = await payer.channels.connect(ch!.id);
    try {
      expect(await s.pay(10n, { count: 1000 })).toMatchObject({ payments: 1000, sent: 1000, acked: 1000, skipped: 0, sats: 10_000n });
      const heard: [number, number][] = [];
      const paced = await s.pay([1n, 2n, 3n], { pace: 1000, onLatency: (i, ms) => heard.push([i, ms]) });
      expect(paced).toMatchObject({ payments: 3, acked: 3, sats: 6n });
      expect(heard.map(([i]) => i).sort((x, y) => x - y)).toEqual([0, 1, 2]);
      expect(heard.every(([, ms]) => ms > 0)).toBe(true);

      // Runs asked for together go one after the other.
      const [a, b] = await Promise.all([s.pay(5n, { count: 300 }), s.pay(7n, { count: 200 })]);
      expect([a.sats, b.sats]).toEqual([1500n, 1400n]);

      // More than the channel holds: refused before anything is sent, and the session goes on.
      const over = await expectCode(s.pay(1_000_000n), 'CHANNEL_REFUSED');
      expect(stoppedRun(over)).toMatchObject({ payments: 1, sent: 0, acked: 0, sats: 0n });
      await expectCode(s.pay([1n], { count: 2 }), 'USAGE');
      await expectCode(s.pay(1n, { count: 0 }), 'USAGE');
      await expectCode(s.pay(1n, { pace: 0 }), 'USAGE');

      // The session holds the channel's ledger: a pay() beside it is refused, and nothing of it paid.
      const beside = await expectCode(payer.channels.pay(ch!.id, 1n), 'KEYSTORE_BUSY');
      expect(stoppedRun(beside)).toMatchObject({ acked: 0 });

      expect(await s.pay(1n)).toMatchObject({ acked: 1, sats: 1n });
      const closed = await s.close();
      expect(closed.id).toBe(ch!.id);
      expect(await node.chain.getTransaction(closed.closeTxid)).not.toBeNull();
    } finally {
      await s.disconnect();
    }
    await expectCode(s.pay(1n), 'USAGE');
    expect(await payer.channels.show(ch!.id)).toMatchObject({ status: 'closing', paid: 10_000n + 6n + 1500n + 1400n + 1n });
  });
});
