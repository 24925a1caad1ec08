/**
 * ChainBackend is swarmpay's only way to the chain. It reports what a real node says;
 * nothing behind it decides on its own that a transaction is valid.
 */
import type { NetworkName } from '../bitcoin/network.js';
import type { Outpoint } from '../bitcoin/outpoint.js';
import type { FeeRate } from '../bitcoin/fee-rate.js';

/** The kinds of node a ChainBackend speaks to: the embedded regtest btcd, or a btcd or Bitcoin Core of one's own. */
export const CHAIN_KINDS = ['embedded', 'btcd', 'bitcoind'] as const;
export type ChainKind = (typeof CHAIN_KINDS)[number];

export interface Utxo extends Outpoint {
  value: bigint;
  script: Uint8Array;
  address: string;
  /** 0 while in the mempool. */
  confirmations: number;
  coinbase: boolean;
}

interface TxInput extends Outpoint {
  /** The witness stack, empty for a legacy input; escrow reads revealed preimages here. */
  witness: Uint8Array[];
  sequence: number;
}

interface TxOutput {
  value: bigint;
  script: Uint8Array;
}

export interface TxInfo {
  txid: string;
  hex: string;
  /** 0 while in the mempool. */
  confirmations: number;
  blockHash: string | undefined;
  /** The block's time, seconds since 1970; undefined in the mempool. */
  blockTime: number | undefined;
  coinbase: boolean;
  inputs: TxInput[];
  outputs: TxOutput[];
}

export interface Spend {
  txid: string;
  /** Which input of the spending transaction spends the outpoint. */
  input: number;
  witness: Uint8Array[];
  confirmations: number;
}

export interface WaitOptions {
  onProgress?: (confirmations: number, wanted: number) => void;
  timeoutMs?: number;
  pollMs?: number;
}

export interface ChainBackend {
  readonly network: NetworkName;
  tipHeight(): Promise<number>;
  /** Unspent outputs paying any of these addresses, mempool included (confirmations 0). */
  utxos(addresses: string[]): Promise<Utxo[]>;
  /** For each address, whether any transaction ever paid it (gap-limit discovery). */
  used(addresses: string[]): Promise<boolean[]>;
  /**
   * Every transaction that pays or spends any of these addresses, mempool included, each
   * once. HISTORY_UNAVAILABLE where the node keeps no address index (Bitcoin Core sees
   * unspent outputs only): never a part of the history passed off as all of it.
   */
  history(addresses: string[]): Promise<TxInfo[]>;
  /** Sends a transaction to the node; a rejection surfaces the node's own reason. */
  broadcast(hex: string): Promise<string>;
  getTransaction(txid: string): Promise<TxInfo | null>;
  /** The transaction that spends an outpoint paying `address`, if any. */
  findSpend(outpoint: Outpoint, address: string): Promise<Spend | null>;
  /**
   * An output's confirmations while it is unspent (0 in the mempool); null when it is spent
   * in a block, or unknown. A short answer, for asking often. (btcd still shows an output
   * that only a mempool transaction spends; Core does not.)
   */
  txOut(outpoint: Outpoint): Promise<{ confirmations: number } | null>;
  waitForConfirmations(txid: string, wanted: number, opts?: WaitOptions): Promise<TxInfo>;
  /**
   * The node's fee rate for confirming within `targetBlocks`, as precise as it gives it (sat/kvB);
   * null when the node has no estimate yet (too few blocks or transactions seen).
   */
  estimateFeeRate(targetBlocks: number): Promise<FeeRate | null>;
  /** Regtest only: mines blocks to the node's mining address. */
  mine(blocks: number): Promise<string[]>;
}
