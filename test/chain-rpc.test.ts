import { Transaction, payments, networks } from 'bitcoinjs-lib';
import { RpcClient } from '../src/chain/rpc-client.js';
import { BtcdChain, btcPerKvbToFeeRate } from '../src/chain/rpc-chain.js';
import { SEGWIT_ACTIVE_HEIGHT, startNode } from '../src/chain/embedded-node.js';
import { FAUCET_ADDRESS, faucetPay, faucetKey } from '../src/wallet/faucet.js';
import { signPlan } from '../src/bitcoin/spend.js';
import { SwarmpayError } from '../src/errors.js';
import { startBareBtcd, startTestNode, type TestNode } from './helpers/node.js';
import { tempDir } from './helpers/tmp.js';
import { FeeRate } from '../src/bitcoin/fee-rate.js';

const someAddress = payments.p2wpkh({ hash: Buffer.alloc(20, 7), network: networks.regtest }).address!;

describe('ChainBackend on a real btcd', () => {
  let node: TestNode;
  beforeAll(async () => {
    node = await startTestNode();
  });
  afterAll(async () => {
    await node?.stop();
  });

  test('a fresh node is mined to segwit activation', async () => {
    expect(await node.chain.tipHeight()).toBeGreaterThanOrEqual(SEGWIT_ACTIVE_HEIGHT);
    const info = await node.rpc.call<{ bip9_softforks: Record<string, { status: string }> }>('getblockchaininfo');
    expect(info.bip9_softforks.segwit!.status).toBe('active');
  });

  test('starting again finds the running node instead of a second one', async () => {
    const again = await startNode(node.nodeDir, 'btcd', FAUCET_ADDRESS);
    expect(again.alreadyRunning).toBe(true);
    expect(again.state.pid).toBe(node.state.pid);
  });

  test('a faucet payment is seen in the mempool, then confirmed, with exact values', async () => {
    expect(await node.chain.used([someAddress])).toEqual([false]);
    const tx = await faucetPay(node.chain, someAddress, 123_456n);
    const unconfirmed = await node.chain.utxos([someAddress]);
    expect(unconfirmed).toHaveLength(1);
    expect(unconfirmed[0]).toMatchObject({ txid: tx.txid, value: 123_456n, confirmations: 0, coinbase: false, address: someAddress });
    await node.chain.mine(1);
    const confirmed = await node.chain.waitForConfirmations(tx.txid, 1, { pollMs: 50 });
    expect(confirmed.confirmations).toBe(1);
    expect(await node.chain.used([someAddress])).toEqual([true]);
  });

  test('the spend of an outpoint is found with its witness', async () => {
    const tx = await faucetPay(node.chain, someAddress, 50_000n);
    const info = await node.chain.getTransaction(tx.txid);
    const outpoint = info!.inputs[0]!;
    const spend = await node.chain.findSpend({ txid: outpoint.txid, vout: outpoint.vout }, FAUCET_ADDRESS);
    expect(spend).toMatchObject({ txid: tx.txid, input: 0 });
    expect(spend!.witness).toHaveLength(2);
    expect(await node.chain.findSpend({ txid: '00'.repeat(32), vout: 0 }, someAddress)).toBeNull();
  });

  test('an unknown transaction is null, not an error', async () => {
    expect(await node.chain.getTransaction('11'.repeat(32))).toBeNull();
  });

  test('a transaction with a bad signature is rejected by the node, with the node\'s reason', async () => {
    const coin = (await node.chain.utxos([FAUCET_ADDRESS])).find((u) => u.coinbase && u.confirmations >= 100)!;
    const signed = signPlan(
      { inputs: [coin], outputs: [{ script: payments.p2wpkh({ address: someAddress, network: networks.regtest }).output!, value: coin.value - 1000n }], fee: 1000n, feeRate: FeeRate.ofSatPerVb(2n), paid: coin.value - 1000n },
      [faucetKey()],
      'regtest',
    );
    const tx = Transaction.fromHex(signed.hex);
    const sig = Buffer.from(tx.ins[0]!.witness[0]!);
    sig[10] ^= 0x01; // still a well-formed DER signature, but not a valid one
    tx.ins[0]!.witness[0] = sig;
    const err = (await node.chain.broadcast(tx.toHex()).catch((e: unknown) => e)) as SwarmpayError;
    expect(err).toBeInstanceOf(SwarmpayError);
    expect(err.code).toBe('TX_REJECTED');
    expect(err.message).toMatch(/signature|script|verify/i);
    // Nothing was spent: the coin is still there.
    expect((await node.chain.utxos([FAUCET_ADDRESS])).some((u) => u.txid === coin.txid && u.vout === coin.vout)).toBe(true);
  });

  test('a double spend is rejected by the node', async () => {
    const tx = await faucetPay(node.chain, someAddress, 70_000n);
    const info = (await node.chain.getTransaction(tx.txid))!;
    // The same inputs again, paying elsewhere: the node must refuse it.
    const again = Transaction.fromHex(info.hex);
    again.outs[0]!.script = payments.p2wpkh({ hash: Buffer.alloc(20, 9), network: networks.regtest }).output!;
    const err = (await node.chain.broadcast(again.toHex()).catch((e: unknown) => e)) as SwarmpayError;
    expect(err.code).toBe('TX_REJECTED');
    expect(err.message).toMatch(/replacement|already spent|conflict/i);
  });

  test('wrong RPC credentials are an RPC_AUTH error', async () => {
    const bad = new BtcdChain('regtest', new RpcClient({ url: node.state.rpcUrl, user: 'nobody', password: 'wrong' }));
    await expect(bad.tipHeight()).rejects.toMatchObject({ code: 'RPC_AUTH' });
  });

  test('a node that is not there is NODE_UNREACHABLE', async () => {
    const gone = new BtcdChain('regtest', new RpcClient({ url: 'http://127.0.0.1:1/', user: 'u', password: 'p' }));
    await expect(gone.tipHeight()).rejects.toMatchObject({ code: 'NODE_UNREACHABLE' });
  });
});

describe('fee estimates', () => {
  test('BTC per kvB becomes a fee rate kept to the sat/kvB, not rounded to whole sat/vB; no rate is null', () => {
    const satPerVb = (btcPerKvb: number) => btcPerKvbToFeeRate(btcPerKvb)?.toString();
    expect(satPerVb(0.00001)).toBe('1');
    // btcd's own float arithmetic for 2 sat/vB: 2 × 1000 × 1e-8 is a hair above 0.00002.
    expect(satPerVb(2 * 1000 * 1e-8)).toBe('2');
    expect(satPerVb(0.00001001)).toBe('1.001');
    expect(satPerVb(0.00002501)).toBe('2.501');
    expect(satPerVb(0.00025)).toBe('25');
    expect(satPerVb(0.00000001)).toBe('0.001');
    expect(satPerVb(0.000000001)).toBe('0.001'); // any positive rate is at least 1 sat/kvB
    expect(satPerVb(0.5)).toBe('50000');
    expect(satPerVb(21)).toBe('2100000');
    for (const none of [0, -0.0001, -1, Number.NaN, Number.POSITIVE_INFINITY]) expect(btcPerKvbToFeeRate(none)).toBeNull();
  });

  describe('on a real btcd', () => {
    let node: TestNode;
    beforeAll(async () => {
      node = await startTestNode();
    });
    afterAll(async () => {
      await node?.stop();
    });

    test('a node that has seen no transactions has no estimate, at any target, and no error', async () => {
      for (const target of [0, 1, 6, 25, 26, 1000]) expect(await node.chain.estimateFeeRate(target)).toBeNull();
    });

    test('after blocks that confirm payments, the estimate is the rate they paid, to the sat/kvB', async () => {
      const rates = new Set<string>();
      for (let n = 0; n < 3; n++) {
        const tx = await faucetPay(node.chain, someAddress, 40_000n, FeeRate.ofSatPerVb(7n));
        rates.add(FeeRate.paidBy(tx.fee, BigInt(tx.vsize)).toString());
        await node.chain.mine(1);
      }
      // btcd's estimate is the middle of the rates it saw confirm; each was 7 sat/vB or a hair above.
      for (const target of [1, 6, 25, 1000]) expect(rates).toContain((await node.chain.estimateFeeRate(target))?.toString());
    });

    test('a btcd fresh from start-up, before anything mines it, answers no estimate, not an error', async () => {
      // startNode mines every fresh btcd (and btcd wipes its regtest chain at each start), so
      // this one is started by hand: its estimator has seen no block, and refuses to estimate.
      const tmp = tempDir('swarmpay-fresh-btcd-');
      const { rpc, stop } = await startBareBtcd(tmp.dir, [`--miningaddr=${FAUCET_ADDRESS}`]);
      try {
        // What btcd itself answers: an error whose reason it drops on the way out.
        await expect(rpc.call('estimatefee', [1])).rejects.toMatchObject({ rpcCode: -32600 });
        const chain = new BtcdChain('regtest', rpc);
        for (const target of [0, 1, 6, 25, 1000]) expect(await chain.estimateFeeRate(target)).toBeNull();
        // Blocks seen, but no transaction in them: 0, still no estimate.
        await chain.mine(3);
        expect(await rpc.call('estimatefee', [1])).toBe(0);
        expect(await chain.estimateFeeRate(1)).toBeNull();
      } finally {
        await stop();
        tmp.remove();
      }
    });
  });
});
