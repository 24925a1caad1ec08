/**
 * Child pays for parent from the wallet, on a real btcd: a 1 sat/vB parent paying the
 * wallet is lifted by a child the node takes, the child is replaced by a higher one, a
 * confirmed coin joins when the parent's output is too small, and each refusal sends nothing.
 */
import path from 'node:path';
import { Transaction } from 'bitcoinjs-lib';
import { startTestNode, type TestNode } from './helpers/node.js';
import { tempDir } from './helpers/tmp.js';
import { testWallet, fund, type TestWallet } from './helpers/wallets.js';
import { expectCode, failure } from './helpers/expect.js';
import { ParentConfirmedError, planCpfp, signCpfp, type CpfpParent } from '../src/wallet/cpfp.js';
import { cpfpChildFee, packageFeeRate } from '../src/bitcoin/cpfp.js';
import { planSend, signSend } from '../src/wallet/send.js';
import { receiveAddress, walletAccount } from '../src/wallet/wallet.js';
import { FeeRate } from '../src/bitcoin/fee-rate.js';

describe('CPFP arithmetic', () => {
  const parent = { parentFee: 141n, parentVsize: 141n };

  test('the child pays what lifts the pair to the rate', () => {
    const fee = cpfpChildFee({ ...parent, childVsize: 110n, feeRate: FeeRate.ofSatPerVb(25n) });
    expect(fee).toBe(25n * (141n + 110n) - 141n);
    expect(packageFeeRate(141n, 141n, fee, 110n).toString()).toBe('25');
  });

  test('a parent that already pays the rate still gets a child that pays it for itself', () => {
    expect(cpfpChildFee({ parentFee: 141n * 40n, parentVsize: 141n, childVsize: 110n, feeRate: FeeRate.ofSatPerVb(25n) })).toBe(25n * 110n);
  });

  test('a replacement pays the earlier fee plus relay for its own size, at a higher rate than the earlier child', () => {
    // The same target as the earlier child: rules 3 and 4 decide.
    expect(cpfpChildFee({ ...parent, childVsize: 110n, feeRate: FeeRate.ofSatPerVb(5n), replacing: { fee: 1114n, vsize: 110n } })).toBe(1114n + 110n);
    // A larger replacement (one more input) of a small, high-rate earlier child: the rate decides.
    // 2000 sats over 110 vB is 18181 sat/kvB; 18182 sat/kvB over 178 vB is 3236.4 sats.
    expect(cpfpChildFee({ ...parent, childVsize: 178n, feeRate: FeeRate.ofSatPerVb(1n), replacing: { fee: 2000n, vsize: 110n } })).toBe(3237n);
    // A higher target decides when it asks more than both.
    expect(cpfpChildFee({ ...parent, childVsize: 110n, feeRate: FeeRate.ofSatPerVb(30n), replacing: { fee: 1224n, vsize: 110n } })).toBe(30n * 251n - 141n);
  });
});

describe('CPFP from the wallet on a real btcd', () => {
  let node: TestNode;
  let tmp: ReturnType<typeof tempDir>;
  /** Builds the low-fee parents. */
  let sender: TestWallet;
  /** Is paid by them, and bumps them. */
  let bumper: TestWallet;

  const account = (w: TestWallet) => walletAccount(w.networkDir, 'regtest');
  const mempool = async () => (await node.rpc.call<string[]>('getrawmempool')).sort();
  const vsizeOf = (hex: string) => BigInt(Transaction.fromHex(hex).virtualSize());

  /** A transaction's fee from the node's copies of what it spends. */
  const feeOf = async (hex: string) => {
    const tx = Transaction.fromHex(hex);
    let fee = -tx.outs.reduce((a, o) => a + o.value, 0n);
    for (const i of tx.ins) fee += (await node.chain.getTransaction(Buffer.from(i.hash).reverse().toString('hex')))!.outputs[i.index]!.value;
    return fee;
  };

  /** A 1 sat/vB payment from the sender to `to`'s next receive address, broadcast unless told not to, never mined here. */
  const lowFeeParent = async (to: TestWallet, amount: bigint, broadcast = true): Promise<CpfpParent> => {
    const { address } = await receiveAddress(node.chain, to.networkDir, 'regtest');
    const signed = signSend(await planSend(node.chain, account(sender), 'regtest', address, amount, FeeRate.ofSatPerVb(1n)), sender.seed, 'regtest');
    if (broadcast) await node.chain.broadcast(signed.hex);
    return { txid: signed.txid, hex: signed.hex, fee: signed.fee };
  };

  /** The package's real fees and sizes, from the transactions themselves and the node. */
  const expectPackageRate = async (parent: CpfpParent, childHex: string, atLeast: bigint, below: bigint) => {
    const fees = (await feeOf(parent.hex)) + (await feeOf(childHex));
    const vsize = vsizeOf(parent.hex) + vsizeOf(childHex);
    expect(fees).toBeGreaterThanOrEqual(atLeast * vsize);
    expect(fees).toBeLessThan(below * vsize);
  };

  beforeAll(async () => {
    node = await startTestNode();
    tmp = tempDir();
    sender = await testWallet(path.join(tmp.dir, 'sender'));
    bumper = await testWallet(path.join(tmp.dir, 'bumper'));
    // Separate coins, so that several parents can wait unconfirmed at once.
    for (let n = 0; n < 6; n++) await fund(node.chain, sender, 2_000_000n);
    await fund(node.chain, bumper, 300_000n);
  });
  afterAll(async () => {
    await node?.stop();
    tmp?.remove();
  });

  test('a child at 25 sat/vB lifts a 1 sat/vB parent: btcd takes it, the pair pays 25 to 27 sat/vB, and one block confirms both', async () => {
    const parent = await lowFeeParent(bumper, 200_000n);
    expect(await feeOf(parent.hex)).toBe(parent.fee);
    const plan = await planCpfp(node.chain, account(bumper), 'regtest', parent, FeeRate.ofSatPerVb(25n));
    // The parent's output is enough: no other coin is touched.
    expect(plan.spend.inputs.map((i) => i.txid)).toEqual([parent.txid]);
    expect(plan.parentVsize).toBe(vsizeOf(parent.hex));
    expect(plan.packageFeeRate.compare(FeeRate.ofSatPerVb(25n))).toBeGreaterThanOrEqual(0);
    expect(plan.replaces).toBeNull();

    const child = signCpfp(plan, bumper.seed, 'regtest');
    expect(child.vsize).toBeLessThanOrEqual(Number(plan.childVsize));
    await node.chain.broadcast(child.hex);
    expect(await mempool()).toEqual(expect.arrayContaining([parent.txid, child.txid]));
    await expectPackageRate(parent, child.hex, 25n, 27n);

    await node.chain.mine(1);
    for (const txid of [parent.txid, child.txid]) expect((await node.chain.getTransaction(txid))!.confirmations).toBe(1);

    // Confirmed now: nothing to bump, said in a way the caller can tell apart.
    const e = await failure(planCpfp(node.chain, account(bumper), 'regtest', parent, FeeRate.ofSatPerVb(25n)));
    expect(e).toBeInstanceOf(ParentConfirmedError);
    expect((e as ParentConfirmedError).message).toMatch(/already confirmed/);
  });

  test('a child that replaces an earlier one of the same parent is taken by btcd, and the earlier one leaves the mempool', async () => {
    const parent = await lowFeeParent(bumper, 200_000n);
    const first = signCpfp(await planCpfp(node.chain, account(bumper), 'regtest', parent, FeeRate.ofSatPerVb(5n)), bumper.seed, 'regtest');
    await node.chain.broadcast(first.hex);

    // Not told of the earlier child, the wallet finds its output of the parent spent, and says by what.
    const spent = await expectCode(planCpfp(node.chain, account(bumper), 'regtest', parent, FeeRate.ofSatPerVb(30n)), 'TX_CHECK_FAILED');
    expect(spent.message).toContain(`already spent by ${first.txid}`);

    // At the same target a replacement still outbids the earlier child: its fee plus relay for its own size.
    const samePlan = await planCpfp(node.chain, account(bumper), 'regtest', parent, FeeRate.ofSatPerVb(5n), { replacing: first });
    expect(samePlan.replaces).toEqual({ txid: first.txid, fee: first.fee, vsize: BigInt(first.vsize) });
    expect(samePlan.spend.fee).toBeGreaterThanOrEqual(first.fee + samePlan.childVsize);
    // Which btcd enforces: one sat more than the earlier child, at a higher rate, is refused.
    const short = samePlan.spend.outputs[0]!.value + samePlan.spend.fee - (first.fee + 1n);
    const shortSpend = { ...samePlan.spend, fee: first.fee + 1n, outputs: [{ ...samePlan.spend.outputs[0]!, value: short }], paid: short };
    const refused = await expectCode(node.chain.broadcast(signSend({ spend: shortSpend, owners: samePlan.owners }, bumper.seed, 'regtest').hex), 'TX_REJECTED');
    expect(refused.message).toMatch(/replacement transaction has an insufficient absolute fee/);
    const same = signCpfp(samePlan, bumper.seed, 'regtest');
    await node.chain.broadcast(same.hex);
    expect(await node.chain.getTransaction(first.txid)).toBeNull();

    // Then a higher rate, replacing that one.
    const higherPlan = await planCpfp(node.chain, account(bumper), 'regtest', parent, FeeRate.ofSatPerVb(30n), { replacing: same });
    expect(higherPlan.replaces?.txid).toBe(same.txid);
    const higher = signCpfp(higherPlan, bumper.seed, 'regtest');
    await node.chain.broadcast(higher.hex);
    const pool = await mempool();
    expect(pool).toEqual(expect.arrayContaining([parent.txid, higher.txid]));
    expect(pool).not.toContain(first.txid);
    expect(pool).not.toContain(same.txid);
    expect(await node.chain.getTransaction(same.txid)).toBeNull();
    await expectPackageRate(parent, higher.hex, 30n, 32n);

    // Naming a child the node has dropped replaces nothing; its output of the parent is spent by the newest child.
    const gone = await expectCode(planCpfp(node.chain, account(bumper), 'regtest', parent, FeeRate.ofSatPerVb(40n), { replacing: first }), 'TX_CHECK_FAILED');
    expect(gone.message).toContain(`already spent by ${higher.txid}`);

    await node.chain.mine(1);
    for (const txid of [parent.txid, higher.txid]) expect((await node.chain.getTransaction(txid))!.confirmations).toBe(1);
  });

  test('a parent output too small to pay the fee: a confirmed wallet coin joins, and btcd takes the child', async () => {
    const parent = await lowFeeParent(bumper, 1_000n);
    const plan = await planCpfp(node.chain, account(bumper), 'regtest', parent, FeeRate.ofSatPerVb(25n));
    expect(plan.spend.inputs).toHaveLength(2);
    expect(plan.spend.inputs[0]!.txid).toBe(parent.txid);
    const coin = plan.spend.inputs[1]!;
    expect((await node.chain.getTransaction(coin.txid))!.confirmations).toBeGreaterThan(0);
    expect(plan.spend.fee).toBeGreaterThan(1_000n);

    const child = signCpfp(plan, bumper.seed, 'regtest');
    await node.chain.broadcast(child.hex);
    await expectPackageRate(parent, child.hex, 25n, 27n);
    await node.chain.mine(1);
    for (const txid of [parent.txid, child.txid]) expect((await node.chain.getTransaction(txid))!.confirmations).toBe(1);
  });

  test('with parentOnly, no wallet coin joins: a parent output too small for the fee is refused, and nothing is sent', async () => {
    const parent = await lowFeeParent(bumper, 1_000n);
    const e = await expectCode(planCpfp(node.chain, account(bumper), 'regtest', parent, FeeRate.ofSatPerVb(25n), { parentOnly: true }), 'INSUFFICIENT_FUNDS');
    expect(e.message).toMatch(/the wallet's outputs of it hold 1000$/);
    // The same parent at a rate its own output can pay: one input, the parent's.
    const plan = await planCpfp(node.chain, account(bumper), 'regtest', parent, FeeRate.ofSatPerVb(3n), { parentOnly: true });
    expect(plan.spend.inputs.map((i) => i.txid)).toEqual([parent.txid]);
    await node.chain.mine(1);
  });

  describe('refusals, with nothing sent', () => {
    let before: string[];
    beforeEach(async () => {
      before = await mempool();
    });
    afterEach(async () => {
      expect(await mempool()).toEqual(before);
    });

    test('a parent that pays the wallet nothing', async () => {
      const stranger = await testWallet(path.join(tmp.dir, 'stranger'));
      const parent = await lowFeeParent(stranger, 50_000n);
      before = await mempool();
      const e = await expectCode(planCpfp(node.chain, account(bumper), 'regtest', parent, FeeRate.ofSatPerVb(25n)), 'TX_CHECK_FAILED');
      expect(e.message).toMatch(/pays this wallet nothing/);
    });

    test('a target rate of 0, or above the cap', async () => {
      const parent = await lowFeeParent(bumper, 50_000n, false);
      await expectCode(planCpfp(node.chain, account(bumper), 'regtest', parent, FeeRate.ofSatPerVb(0n)), 'INVALID_AMOUNT');
      await expectCode(planCpfp(node.chain, account(bumper), 'regtest', parent, FeeRate.ofSatPerVb(1001n)), 'FEE_TOO_HIGH');
    });

    test('a wallet that cannot pay the fee', async () => {
      const poor = await testWallet(path.join(tmp.dir, 'poor'));
      const parent = await lowFeeParent(poor, 1_000n);
      before = await mempool();
      const e = await expectCode(planCpfp(node.chain, account(poor), 'regtest', parent, FeeRate.ofSatPerVb(25n)), 'INSUFFICIENT_FUNDS');
      expect(BigInt(e.details!.needed as string)).toBeGreaterThan(BigInt(e.details!.available as string));
      expect(e.details!.available).toBe('1000');
    });

    test('a fee over the absolute cap: over 100,000 sats and over half the child\'s output', async () => {
      const capped = await testWallet(path.join(tmp.dir, 'capped'));
      await fund(node.chain, capped, 500_000n);
      const parent = await lowFeeParent(capped, 10_000n);
      before = await mempool();
      // About 1000 × (141 + 178) vB: some 319,000 sats of fee, leaving about 191,000 as the output.
      const e = await expectCode(planCpfp(node.chain, account(capped), 'regtest', parent, FeeRate.ofSatPerVb(1000n)), 'FEE_TOO_HIGH');
      expect(e.message).toMatch(/more than 50% of the \d+ sats sent/);
    });

    test('a parent the node does not have, or one whose hex is another transaction', async () => {
      const parent = await lowFeeParent(bumper, 50_000n, false);
      await expectCode(planCpfp(node.chain, account(bumper), 'regtest', parent, FeeRate.ofSatPerVb(25n)), 'TX_NOT_FOUND');
      const e = await expectCode(planCpfp(node.chain, account(bumper), 'regtest', { ...parent, txid: '11'.repeat(32) }, FeeRate.ofSatPerVb(25n)), 'TX_CHECK_FAILED');
      expect(e.message).toContain(parent.txid);
    });
  });
});
