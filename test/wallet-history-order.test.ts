/**
 * The order of `wallet history` over a long chain of the wallet's own transactions, each
 * spending the one before: the depth that puts a child above its parent in one block is
 * worked out without recursion, so 5000 of them are no deeper a stack than 5.
 *
 * A fake ChainBackend, for this volume only: a real btcd cannot be given 5000 chained
 * transactions in a test's time (its mempool also takes at most 25 in one chain). The
 * history against a real btcd is tested in wallet-history.test.ts.
 */
import { createHash } from 'node:crypto';
import type { ChainBackend, TxInfo } from '../src/chain/backend.js';
import { RECEIVE, accountNode, deriveAddress } from '../src/wallet/hd.js';
import { chainHistory, historyEntries } from '../src/wallet/history.js';

const CHAIN_LENGTH = 5000;
const FUNDING = 1_000_000_000n;
const FEE = 100n;

/** A backend that knows only `txs` and answers only what history needs; anything else is a bug of the test. */
function chainOf(txs: TxInfo[], tip: number, paidAddress: string): ChainBackend {
  const unused = () => {
    throw new Error('not asked by wallet history');
  };
  return {
    network: 'regtest',
    tipHeight: async () => tip,
    history: async (addresses) => (addresses.includes(paidAddress) ? txs : []),
    utxos: unused,
    used: unused,
    broadcast: unused,
    getTransaction: unused,
    findSpend: unused,
    txOut: unused,
    waitForConfirmations: unused,
    estimateFeeRate: unused,
    mine: unused,
  };
}

test('5000 chained transactions of the wallet, the last two in one block: newest first, the child above its parent', async () => {
  const account = accountNode(new Uint8Array(32).fill(7), 'regtest');
  const own = deriveAddress(account, 'regtest', RECEIVE, 0);
  // One transaction a block, but the last shares the block of the one it spends.
  const tip = CHAIN_LENGTH - 1;
  const heightOf = (n: number) => Math.min(n + 1, tip);
  const txs: TxInfo[] = [];
  for (let n = 0; n < CHAIN_LENGTH; n++) {
    const spends = n === 0 ? { txid: 'ee'.repeat(32), witness: [] } : { txid: txs[n - 1]!.txid, witness: [new Uint8Array(71), new Uint8Array(33).fill(2)] };
    txs.push({
      txid: createHash('sha256').update(`tx ${n}`).digest('hex'),
      hex: '',
      confirmations: tip - heightOf(n) + 1,
      blockHash: undefined,
      blockTime: 1_700_000_000 + heightOf(n) * 600,
      coinbase: false,
      inputs: [{ ...spends, vout: 0, sequence: 0xfffffffd }],
      outputs: [{ value: FUNDING - BigInt(n) * FEE, script: own.script }],
    });
  }
  // The node's own order says nothing: the history orders them itself.
  const shuffled = [...txs].sort((a, b) => (a.txid < b.txid ? -1 : 1));

  const h = historyEntries(await chainHistory(chainOf(shuffled, tip, own.address), account, 'regtest'), new Map());

  expect(h.map((e) => e.txid)).toEqual(txs.map((t) => t.txid).reverse());
  const [last, beside] = h;
  expect([last!.height, beside!.height, h[2]!.height]).toEqual([tip, tip, tip - 1]);
  expect(last).toMatchObject({ kind: 'self', amount: -FEE, fee: FEE, confirmations: 1 });
  expect(h.at(-1)).toMatchObject({ kind: 'receive', amount: FUNDING, confirmations: tip });
});
