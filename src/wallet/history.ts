/**
 * `wallet history`: every transaction that paid or spent the wallet's addresses, found
 * from the account's xpub by gap-limit discovery and read from the chain's address index,
 * each with what it did to the wallet. Amounts come from the transactions' own bytes: a
 * wallet input's value from the transaction that paid it, which paid a wallet address and
 * so is in the history too.
 */
import type { BIP32Interface } from 'bip32';
import type { ChainBackend, TxInfo } from '../chain/backend.js';
import type { NetworkName } from '../bitcoin/network.js';
import { addressToScript, scriptToAddress } from '../bitcoin/address.js';
import { GAP_LIMIT, scanChain } from './discovery.js';
import { CHANGE, RECEIVE, type DerivedAddress } from './hd.js';

/** What a contract's records, or the wallet's own, say a transaction is. */
export type LabelKind = 'channel-funding' | 'channel-close' | 'channel-refund' | 'channel-cpfp' | 'escrow-funding' | 'escrow-claim' | 'escrow-refund' | 'bump';
/** A labelled transaction's kind, else what the chain shows it did: paid the wallet, paid others, or paid only the wallet itself. */
export type HistoryKind = LabelKind | 'receive' | 'send' | 'self';

export interface TxLabel {
  kind: LabelKind;
  /** The channels (one funding may open many) or escrows it belongs to. */
  channels?: string[];
  escrows?: string[];
  /** A bump: the payment it replaced. */
  replaces?: string;
}

/** A wallet address a transaction pays (a credit) or whose coin it spends (a debit). */
export interface WalletOutput {
  txid: string;
  vout: number;
  address: string;
  path: string;
  kind: 'receive' | 'change';
  value: bigint;
}

/** An output paying someone else: its address, or its script (hex) when it has none. */
export interface OtherOutput {
  vout: number;
  address?: string;
  script?: string;
  value: bigint;
}

export interface HistoryEntry extends Omit<TxLabel, 'kind'> {
  txid: string;
  kind: HistoryKind;
  /** Net to the wallet, sats: what it was paid less what it spent. */
  amount: bigint;
  /** The fee, when the wallet paid every input (so the fee is the wallet's). */
  fee?: bigint;
  /** 0 in the mempool. */
  confirmations: number;
  /** The block's height and time (ISO 8601), when confirmed. */
  height?: number;
  time?: string;
  coinbase?: true;
  /** The wallet's outputs it pays. */
  credits: WalletOutput[];
  /** The wallet's coins it spends. */
  debits: WalletOutput[];
  /** What it pays anyone else. */
  others: OtherOutput[];
}

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

/** Scans of the chain before a history is given though blocks kept coming during each. */
const MAX_SCANS = 5;

/**
 * The history, newest first: mempool transactions on top, then by height; in one block (or
 * the mempool) a child above its parent. `labels` is asked once the chain has answered, so
 * a backend that cannot give the history refuses before any keystore is opened.
 */
export async function walletHistory(chain: ChainBackend, account: BIP32Interface, network: NetworkName, labels: () => Promise<Map<string, TxLabel>>): Promise<HistoryEntry[]> {
  // Of no address first: a node without an address index refuses at once (HISTORY_UNAVAILABLE), before anything else is asked of it.
  await chain.history([]);
  const { txs, used, tip } = await scanAtOneTip(chain, account, network);
  const byTxid = new Map(txs.map((t) => [t.txid, t]));
  const ownerOf = new Map(used.map((a) => [hex(a.script), a]));
  const known = await labels();
  const depth = depthsIn(byTxid);
  return txs
    .map((t) => entryOf(t, tip, byTxid, ownerOf, known.get(t.txid), network))
    .sort((a, b) => (b.confirmations === 0 ? Infinity : b.height!) - (a.confirmations === 0 ? Infinity : a.height!) || depth(b.txid) - depth(a.txid) || (a.txid < b.txid ? -1 : 1));
}

/**
 * Gap-limit discovery that keeps the transactions it reads: an address is used when one of
 * them pays it (a coin is paid before it is spent, so the payment is in its history too).
 * Read again if a block came in meanwhile, so that every height is counted from one tip.
 */
async function scanAtOneTip(chain: ChainBackend, account: BIP32Interface, network: NetworkName): Promise<{ txs: TxInfo[]; used: DerivedAddress[]; tip: number }> {
  for (let attempt = 1; ; attempt++) {
    const tip = await chain.tipHeight();
    const txs = new Map<string, TxInfo>();
    const look = async (addresses: string[]) => {
      const found = await chain.history(addresses);
      for (const t of found) txs.set(t.txid, t);
      const paid = new Set(found.flatMap((t) => t.outputs.map((o) => hex(o.script))));
      return addresses.map((a) => paid.has(hex(addressToScript(a, network))));
    };
    const receive = await scanChain(chain, account, network, RECEIVE, GAP_LIMIT, look);
    const change = await scanChain(chain, account, network, CHANGE, GAP_LIMIT, look);
    // A chain that never stands still for a scan (a regtest mining non-stop) is taken as last read.
    const after = await chain.tipHeight();
    if (after === tip || attempt === MAX_SCANS) return { txs: [...txs.values()], used: [...receive.used, ...change.used], tip: after };
  }
}

function entryOf(t: TxInfo, tip: number, byTxid: Map<string, TxInfo>, ownerOf: Map<string, DerivedAddress>, label: TxLabel | undefined, network: NetworkName): HistoryEntry {
  const walletOutput = (txid: string, vout: number, owner: DerivedAddress, value: bigint): WalletOutput => ({ txid, vout, address: owner.address, path: owner.path, kind: owner.chain === CHANGE ? 'change' : 'receive', value });
  const credits: WalletOutput[] = [];
  const others: OtherOutput[] = [];
  t.outputs.forEach((o, vout) => {
    const owner = ownerOf.get(hex(o.script));
    if (owner) credits.push(walletOutput(t.txid, vout, owner, o.value));
    else others.push({ vout, ...addressOrScript(o.script, network), value: o.value });
  });
  const debits: WalletOutput[] = [];
  for (const i of t.inputs) {
    // A wallet coin was paid by a transaction of the history; a stranger's input is not looked up.
    const prev = byTxid.get(i.txid)?.outputs[i.vout];
    const owner = prev && ownerOf.get(hex(prev.script));
    if (prev && owner) debits.push(walletOutput(i.txid, i.vout, owner, prev.value));
  }
  const sum = (xs: { value: bigint }[]) => xs.reduce((a, x) => a + x.value, 0n);
  const allOurs = !t.coinbase && debits.length === t.inputs.length;
  const { kind: labelled, ...about } = label ?? {};
  const kind: HistoryKind = labelled ?? (debits.length === 0 ? 'receive' : others.length === 0 ? 'self' : 'send');
  return {
    txid: t.txid,
    kind,
    ...about,
    amount: sum(credits) - sum(debits),
    ...(allOurs ? { fee: sum(debits) - sum(t.outputs) } : {}),
    confirmations: t.confirmations,
    ...(t.confirmations > 0 ? { height: tip - t.confirmations + 1 } : {}),
    ...(t.confirmations > 0 && t.blockTime !== undefined ? { time: new Date(t.blockTime * 1000).toISOString() } : {}),
    ...(t.coinbase ? { coinbase: true as const } : {}),
    credits,
    debits,
    others,
  };
}

function addressOrScript(script: Uint8Array, network: NetworkName): { address: string } | { script: string } {
  try {
    return { address: scriptToAddress(script, network) };
  } catch {
    // OP_RETURN and other outputs no address stands for.
    return { script: hex(script) };
  }
}

/** How many of the history's transactions lie below each one (parents, their parents…): a child is always deeper than its parent. */
function depthsIn(byTxid: Map<string, TxInfo>): (txid: string) => number {
  const memo = new Map<string, number>();
  const depth = (txid: string): number => {
    const known = memo.get(txid);
    if (known !== undefined) return known;
    const parents = byTxid.get(txid)?.inputs.filter((i) => byTxid.has(i.txid)) ?? [];
    const d = parents.reduce((m, i) => Math.max(m, depth(i.txid) + 1), 0);
    memo.set(txid, d);
    return d;
  };
  return depth;
}
