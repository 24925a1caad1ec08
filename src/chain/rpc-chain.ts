/**
 * ChainBackend over JSON-RPC, in two dialects: btcd (address index; what the embedded
 * regtest node runs) and Bitcoin Core. Values and scripts are always read from the raw
 * transaction bytes, never from the node's floating-point BTC amounts.
 */
import { Transaction } from 'bitcoinjs-lib';
import { setTimeout as sleep } from 'node:timers/promises';
import { SwarmpayError } from '../errors.js';
import { addressToScript } from '../bitcoin/address.js';
import type { NetworkName } from '../bitcoin/network.js';
import type { Outpoint } from '../bitcoin/outpoint.js';
import type { ChainBackend, Spend, TxInfo, Utxo, WaitOptions } from './backend.js';
import { RpcClient, RpcError } from './rpc-client.js';
import { FeeRate } from '../bitcoin/fee-rate.js';

export type Dialect = 'btcd' | 'core';

interface VerboseTx {
  txid: string;
  hex: string;
  confirmations?: number;
  blockhash?: string;
  blocktime?: number;
}

/** bitcoind's and btcd's "no such transaction / no information" code. */
const RPC_NO_INFO = -5;

function decodeTx(v: VerboseTx): TxInfo {
  const tx = Transaction.fromHex(v.hex);
  return {
    txid: tx.getId(),
    hex: v.hex,
    confirmations: v.confirmations ?? 0,
    blockHash: v.blockhash,
    blockTime: v.blocktime,
    coinbase: tx.isCoinbase(),
    inputs: tx.ins.map((i) => ({
      txid: Buffer.from(i.hash).reverse().toString('hex'),
      vout: i.index,
      witness: i.witness,
      sequence: i.sequence,
    })),
    outputs: tx.outs.map((o) => ({ value: o.value, script: o.script })),
  };
}

abstract class RpcChain implements ChainBackend {
  constructor(
    readonly network: NetworkName,
    protected readonly rpc: RpcClient,
  ) {}

  abstract utxos(addresses: string[]): Promise<Utxo[]>;
  abstract used(addresses: string[]): Promise<boolean[]>;
  abstract history(addresses: string[]): Promise<TxInfo[]>;
  abstract findSpend(outpoint: Outpoint, address: string): Promise<Spend | null>;
  abstract mine(blocks: number): Promise<string[]>;
  abstract estimateFeeRate(targetBlocks: number): Promise<FeeRate | null>;

  tipHeight(): Promise<number> {
    return this.rpc.call<number>('getblockcount');
  }

  async broadcast(hex: string): Promise<string> {
    try {
      return await this.rpc.call<string>('sendrawtransaction', [hex]);
    } catch (e) {
      if (e instanceof RpcError) {
        throw new SwarmpayError('TX_REJECTED', `the node rejected the transaction: ${e.message}`, {
          hint: 'nothing was spent; the reason above is the node\'s own',
          details: { rpcCode: e.rpcCode, reason: e.message },
        });
      }
      throw e;
    }
  }

  async getTransaction(txid: string): Promise<TxInfo | null> {
    try {
      return decodeTx(await this.rpc.call<VerboseTx>('getrawtransaction', [txid, 1]));
    } catch (e) {
      if (e instanceof RpcError && e.rpcCode === RPC_NO_INFO) return null;
      throw asChainError(e);
    }
  }

  async txOut(outpoint: Outpoint): Promise<{ confirmations: number } | null> {
    try {
      const out = await this.rpc.call<{ confirmations: number } | null>('gettxout', [outpoint.txid, outpoint.vout, true]);
      return out === null ? null : { confirmations: out.confirmations };
    } catch (e) {
      // btcd answers "no information" for a transaction it does not know.
      if (e instanceof RpcError && e.rpcCode === RPC_NO_INFO) return null;
      throw asChainError(e);
    }
  }

  async waitForConfirmations(txid: string, wanted: number, opts: WaitOptions = {}): Promise<TxInfo> {
    const timeoutMs = opts.timeoutMs ?? 3_600_000;
    const deadline = Date.now() + timeoutMs;
    let last = -1;
    for (;;) {
      const tx = await this.getTransaction(txid);
      if (tx === null) throw new SwarmpayError('TX_NOT_FOUND', `transaction ${txid} is not known to the node`, { hint: 'it may have been replaced or dropped from the mempool' });
      if (tx.confirmations !== last) {
        last = tx.confirmations;
        opts.onProgress?.(Math.min(last, wanted), wanted);
      }
      if (tx.confirmations >= wanted) return tx;
      if (Date.now() >= deadline) {
        throw new SwarmpayError('TIMEOUT', `transaction ${txid} has ${tx.confirmations} of ${wanted} confirmations after a wait of ${timeoutMs / 1000} s`, {
          hint: 'run the command again later; nothing is lost',
          // The txid tells this wait's end from a node that stopped answering (TIMEOUT too).
          details: { txid, confirmations: tx.confirmations, wanted },
        });
      }
      // A timeout shorter than the poll ends on time, not a poll later.
      await sleep(Math.min(opts.pollMs ?? 1000, deadline - Date.now()));
    }
  }

  /** Each address's output script (hex) → the address, to tell which outputs are whose. */
  protected byScript(addresses: string[]): Map<string, string> {
    return new Map(addresses.map((a) => [Buffer.from(addressToScript(a, this.network)).toString('hex'), a]));
  }

  protected async call<T>(method: string, params: unknown[]): Promise<T> {
    try {
      return await this.rpc.call<T>(method, params);
    } catch (e) {
      throw asChainError(e);
    }
  }
}

/**
 * A node's fee rate in BTC per 1000 vB (a float in both dialects) as a FeeRate, kept to
 * the sat/kvB the node gives; null when there is no rate (0, negative or not a number).
 */
export function btcPerKvbToFeeRate(btcPerKvb: number): FeeRate | null {
  if (!Number.isFinite(btcPerKvb) || btcPerKvb <= 0) return null;
  // Whole sats per kvB, the nodes' own granularity: exact for Core's 8-decimal amounts, and it
  // absorbs the float noise of btcd's computed rates (its 2 sat/vB is 2000.0000000000002 sat/kvB).
  const perKvb = BigInt(Math.round(btcPerKvb * 1e8));
  // Rounding up: any positive rate is at least 1 sat/kvB.
  return FeeRate.ofSatPerKvb(perKvb <= 0n ? 1n : perKvb);
}

/** A confirmation target the node can estimate for: whole blocks, 1 to `max`. */
function feeTarget(targetBlocks: number, max: number): number {
  if (Number.isNaN(targetBlocks)) throw new SwarmpayError('INTERNAL', 'a fee estimate was asked for a target of NaN blocks');
  return Math.min(max, Math.max(1, Math.floor(targetBlocks)));
}

function asChainError(e: unknown): unknown {
  if (e instanceof RpcError) return new SwarmpayError('RPC_ERROR', `the node failed ${e.method}: ${e.message} (code ${e.rpcCode})`, { details: { rpcCode: e.rpcCode } });
  return e;
}

/**
 * btcd's "no estimate yet". Its estimator refuses with a plain error until it has seen 3
 * blocks since start-up, and btcd (up to at least v0.26) answers every plain handler error
 * as -32600 "Invalid request: malformed", dropping the reason. With a target kept in 1..25
 * that refusal is the only plain error estimatefee has left; the reason is matched too for
 * a btcd that passes it on.
 */
const BTCD_INVALID_REQUEST = -32600;
const BTCD_NO_ESTIMATE = /not enough blocks have been observed|fee estimation disabled/i;

/** btcd's answer to searchrawtransactions when it runs without --addrindex. */
const BTCD_NO_ADDRINDEX = /address index must be enabled/i;

/** btcd with --txindex --addrindex: address history comes from searchrawtransactions. */
export class BtcdChain extends RpcChain {
  private static readonly PAGE = 1000;
  /** btcd's estimator looks 25 blocks ahead at most, and answers an error beyond. */
  private static readonly MAX_FEE_TARGET = 25;

  /** Every transaction touching `address` (paying it, or spending what paid it), confirmed and in the mempool. */
  private async addressHistory(address: string): Promise<TxInfo[]> {
    const out: TxInfo[] = [];
    for (let skip = 0; ; skip += BtcdChain.PAGE) {
      let page: VerboseTx[];
      try {
        page = await this.rpc.call<VerboseTx[]>('searchrawtransactions', [address, 1, skip, BtcdChain.PAGE, 0, false]);
      } catch (e) {
        // btcd answers "no information" for an address it has never seen.
        if (e instanceof RpcError && e.rpcCode === RPC_NO_INFO) break;
        if (e instanceof RpcError && BTCD_NO_ADDRINDEX.test(e.message)) {
          throw new SwarmpayError('HISTORY_UNAVAILABLE', 'this btcd keeps no address index (it runs without --addrindex): swarmpay reads the wallet\'s transactions from it', {
            hint: 'restart btcd with --txindex --addrindex, as the embedded node runs',
          });
        }
        throw asChainError(e);
      }
      out.push(...page.map(decodeTx));
      if (page.length < BtcdChain.PAGE) break;
    }
    return out;
  }

  async used(addresses: string[]): Promise<boolean[]> {
    return Promise.all(addresses.map(async (a) => (await this.addressHistory(a)).length > 0));
  }

  async history(addresses: string[]): Promise<TxInfo[]> {
    const txs = new Map<string, TxInfo>();
    for (const hist of await Promise.all(addresses.map((a) => this.addressHistory(a)))) for (const t of hist) txs.set(t.txid, t);
    return [...txs.values()];
  }

  async utxos(addresses: string[]): Promise<Utxo[]> {
    const byScript = this.byScript(addresses);
    const txs = await this.history(addresses);
    const spent = new Set<string>();
    for (const t of txs) for (const i of t.inputs) spent.add(`${i.txid}:${i.vout}`);
    const result: Utxo[] = [];
    for (const t of txs) {
      t.outputs.forEach((o, vout) => {
        const address = byScript.get(Buffer.from(o.script).toString('hex'));
        if (address === undefined || spent.has(`${t.txid}:${vout}`)) return;
        result.push({ txid: t.txid, vout, value: o.value, script: o.script, address, confirmations: t.confirmations, coinbase: t.coinbase });
      });
    }
    return result;
  }

  async findSpend(outpoint: Outpoint, address: string): Promise<Spend | null> {
    for (const t of await this.addressHistory(address)) {
      const found = spendIn(t, outpoint);
      if (found) return found;
    }
    return null;
  }

  mine(blocks: number): Promise<string[]> {
    return this.call<string[]>('generate', [blocks]);
  }

  async estimateFeeRate(targetBlocks: number): Promise<FeeRate | null> {
    try {
      // 0 while no confirmed transaction has been seen since start-up: null, as "no estimate".
      return btcPerKvbToFeeRate(await this.rpc.call<number>('estimatefee', [feeTarget(targetBlocks, BtcdChain.MAX_FEE_TARGET)]));
    } catch (e) {
      if (e instanceof RpcError && (e.rpcCode === BTCD_INVALID_REQUEST || BTCD_NO_ESTIMATE.test(e.message))) return null;
      throw asChainError(e);
    }
  }
}

interface ScanResult {
  success: boolean;
  height: number;
  unspents: { txid: string; vout: number; scriptPubKey: string; amount: number; coinbase: boolean; height: number }[];
}

/**
 * Bitcoin Core without a wallet: scantxoutset sees confirmed unspent outputs only, so
 * `used` cannot see an address whose coins were all spent, and mempool coins are not
 * listed. Spends are found in the mempool (gettxspendingprevout) or by scanning blocks.
 */
class CoreChain extends RpcChain {
  /** Core's longest confirmation target (a week of blocks); it refuses larger ones. */
  private static readonly MAX_FEE_TARGET = 1008;

  constructor(
    network: NetworkName,
    rpc: RpcClient,
    private readonly miningAddress: string | undefined,
  ) {
    super(network, rpc);
  }

  private scan(addresses: string[]): Promise<ScanResult> {
    return this.call<ScanResult>('scantxoutset', ['start', addresses.map((a) => `addr(${a})`)]);
  }

  async used(addresses: string[]): Promise<boolean[]> {
    const scan = await this.scan(addresses);
    const seen = new Set(scan.unspents.map((u) => u.scriptPubKey));
    return addresses.map((a) => seen.has(Buffer.from(addressToScript(a, this.network)).toString('hex')));
  }

  async history(_addresses: string[]): Promise<TxInfo[]> {
    throw new SwarmpayError('HISTORY_UNAVAILABLE', 'Bitcoin Core keeps no address index: it shows a wallet\'s unspent outputs, not the transactions that spent the others', {
      hint: 'use a btcd node run with --txindex --addrindex (--chain btcd --rpc-url …), as the embedded node is; `swarmpay wallet utxos` lists the coins',
    });
  }

  async utxos(addresses: string[]): Promise<Utxo[]> {
    const byScript = this.byScript(addresses);
    const scan = await this.scan(addresses);
    return scan.unspents.map((u) => ({
      txid: u.txid,
      vout: u.vout,
      // Exact: every amount below 21e6 BTC with 8 decimals survives a double and back.
      value: BigInt(Math.round(u.amount * 1e8)),
      script: Buffer.from(u.scriptPubKey, 'hex'),
      address: byScript.get(u.scriptPubKey) ?? '',
      confirmations: scan.height - u.height + 1,
      coinbase: u.coinbase,
    }));
  }

  async findSpend(outpoint: Outpoint, _address: string): Promise<Spend | null> {
    // An output still in the UTXO set (mempool spends included) has no spend: no scan needed.
    if ((await this.txOut(outpoint)) !== null) return null;
    const inMempool = await this.call<{ spendingtxid?: string }[]>('gettxspendingprevout', [[outpoint]]);
    const mempoolTxid = inMempool[0]?.spendingtxid;
    if (mempoolTxid) return spendIn(await this.getTransaction(mempoolTxid), outpoint);
    const funding = await this.getTransaction(outpoint.txid);
    if (!funding?.blockHash) return null;
    const header = await this.call<{ height: number }>('getblockheader', [funding.blockHash]);
    const tip = await this.tipHeight();
    for (let h = header.height; h <= tip; h++) {
      const hash = await this.call<string>('getblockhash', [h]);
      const block = await this.call<{ tx: VerboseTx[] }>('getblock', [hash, 2]);
      for (const v of block.tx) {
        const found = spendIn({ ...decodeTx(v), confirmations: tip - h + 1 }, outpoint);
        if (found) return found;
      }
    }
    return null;
  }

  mine(blocks: number): Promise<string[]> {
    if (!this.miningAddress) throw new SwarmpayError('USAGE', 'mining needs a mining address for a Bitcoin Core node');
    return this.call<string[]>('generatetoaddress', [blocks, this.miningAddress]);
  }

  async estimateFeeRate(targetBlocks: number): Promise<FeeRate | null> {
    const r = await this.call<{ feerate?: number; errors?: string[] }>('estimatesmartfee', [feeTarget(targetBlocks, CoreChain.MAX_FEE_TARGET)]);
    // Without enough data Core leaves feerate out (and says why in `errors`).
    return r.feerate === undefined ? null : btcPerKvbToFeeRate(r.feerate);
  }
}

function spendIn(tx: TxInfo | null, outpoint: Outpoint): Spend | null {
  if (!tx) return null;
  const input = tx.inputs.findIndex((i) => i.txid === outpoint.txid && i.vout === outpoint.vout);
  return input < 0 ? null : { txid: tx.txid, input, witness: tx.inputs[input]!.witness, confirmations: tx.confirmations };
}

export function makeRpcChain(dialect: Dialect, network: NetworkName, rpc: RpcClient, miningAddress?: string): ChainBackend {
  return dialect === 'btcd' ? new BtcdChain(network, rpc) : new CoreChain(network, rpc, miningAddress);
}
