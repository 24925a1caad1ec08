/**
 * `wallet history`: every transaction that paid or spent the wallet's addresses, found
 * from the account's xpub by gap-limit discovery and read from the chain's address index,
 * each with what it did to the wallet. Amounts come from the transactions' own bytes: a
 * wallet input's value from the transaction that paid it, which paid a wallet address and
 * so is in the history too.
 *
 * In two steps: the chain's transactions first (chainHistory), so that a backend that
 * cannot give the history refuses before any keystore is opened; then the entries, with
 * whatever labels the caller found for them (historyEntries).
 */
import type { PublicNode } from './xpub.js';
import type { ChainBackend, TxInfo } from '../chain/backend.js';
import type { NetworkName } from '../bitcoin/network.js';
import { addressToScript, scriptToAddress } from '../bitcoin/address.js';
import { isP2wsh, maySpendP2wsh, scriptHex } from '../bitcoin/scripts.js';
import { GAP_LIMIT, scanChain } from './discovery.js';
import { CHANGE, RECEIVE, scriptOwners, type DerivedAddress, type ScriptOwners } from './hd.js';

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

/** Scans of the chain before a history is given though blocks kept coming during each. */
const MAX_SCANS = 5;

/** What the chain holds of the wallet: every transaction paying or spending its addresses, read at one tip. */
export interface ChainHistory {
  network: NetworkName;
  txs: TxInfo[];
  /** The wallet's addresses the transactions pay. */
  used: DerivedAddress[];
  tip: number;
}

export async function chainHistory(chain: ChainBackend, account: PublicNode, network: NetworkName): Promise<ChainHistory> {
  // Of no address first: Bitcoin Core refuses at once (HISTORY_UNAVAILABLE), without a word to the node; a btcd
  // without --addrindex refuses (HISTORY_UNAVAILABLE too) at the first address the scan asks it about.
  await chain.history([]);
  return { network, ...(await scanAtOneTip(chain, account, network)) };
}

/**
 * Whether a transaction of the history pays or may spend a P2WSH output: only then can it
 * be a channel's or an escrow's step (a CPFP child spends a close or refund that is in the
 * history too), and their records are worth opening to label it.
 */
export function mayHaveContracts(h: ChainHistory): boolean {
  return h.txs.some((t) => t.outputs.some((o) => isP2wsh(o.script)) || t.inputs.some((i) => maySpendP2wsh(i.witness)));
}

/** The history, newest first: mempool transactions on top, then by height; in one block (or the mempool) a child above its parent. */
export function historyEntries(h: ChainHistory, labels: Map<string, TxLabel>): HistoryEntry[] {
  const byTxid = new Map(h.txs.map((t) => [t.txid, t]));
  const ownerOf = scriptOwners(h.used);
  const depth = sameHeightDepths(h.txs, byTxid);
  const height = (e: HistoryEntry) => (e.confirmations === 0 ? Infinity : e.height!);
  return h.txs
    .map((t) => entryOf(t, h.tip, byTxid, ownerOf, labels.get(t.txid), h.network))
    .sort((a, b) => height(b) - height(a) || (depth.get(b.txid) ?? 0) - (depth.get(a.txid) ?? 0) || (a.txid < b.txid ? -1 : 1));
}

/**
 * Gap-limit discovery that keeps the transactions it reads: an address is used when one of
 * them pays it (a coin is paid before it is spent, so the payment is in its history too).
 * Read again if a block came in meanwhile, so that every height is counted from one tip.
 */
async function scanAtOneTip(chain: ChainBackend, account: PublicNode, network: NetworkName): Promise<Omit<ChainHistory, 'network'>> {
  for (let attempt = 1; ; attempt++) {
    const tip = await chain.tipHeight();
    const txs = new Map<string, TxInfo>();
    const look = async (addresses: string[]) => {
      const found = await chain.history(addresses);
      for (const t of found) txs.set(t.txid, t);
      const paid = new Set(found.flatMap((t) => t.outputs.map((o) => scriptHex(o.script))));
      return addresses.map((a) => paid.has(scriptHex(addressToScript(a, network))));
    };
    const receive = await scanChain(chain, account, network, RECEIVE, GAP_LIMIT, look);
    const change = await scanChain(chain, account, network, CHANGE, GAP_LIMIT, look);
    // A chain that never stands still for a scan (a regtest mining non-stop) is taken as last read.
    const after = await chain.tipHeight();
    if (after === tip || attempt === MAX_SCANS) return { txs: [...txs.values()], used: [...receive.used, ...change.used], tip: after };
  }
}

function entryOf(t: TxInfo, tip: number, byTxid: Map<string, TxInfo>, ownerOf: ScriptOwners, label: TxLabel | undefined, network: NetworkName): HistoryEntry {
  const walletOutput = (txid: string, vout: number, owner: DerivedAddress, value: bigint): WalletOutput => ({ txid, vout, address: owner.address, path: owner.path, kind: owner.chain === CHANGE ? 'change' : 'receive', value });
  const credits: WalletOutput[] = [];
  const others: OtherOutput[] = [];
  t.outputs.forEach((o, vout) => {
    const owner = ownerOf(o.script);
    if (owner) credits.push(walletOutput(t.txid, vout, owner, o.value));
    else others.push({ vout, ...addressOrScript(o.script, network), value: o.value });
  });
  const debits: WalletOutput[] = [];
  for (const i of t.inputs) {
    // A wallet coin was paid by a transaction of the history; a stranger's input is not looked up.
    const prev = byTxid.get(i.txid)?.outputs[i.vout];
    const owner = prev && ownerOf(prev.script);
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
    return { script: scriptHex(script) };
  }
}

/**
 * For each transaction, how deep it lies among those of its own height (or, in the mempool,
 * of the mempool): a child is deeper than a parent beside it. Only there does the order
 * need it; across heights the height decides. Worked out in topological order (Kahn's),
 * without recursion: a chain of thousands of the wallet's own transactions is no deeper a
 * stack. A transaction of a cycle (which no real chain has) is left out, as depth 0.
 */
function sameHeightDepths(txs: TxInfo[], byTxid: Map<string, TxInfo>): Map<string, number> {
  const children = new Map<string, string[]>();
  /** Each transaction's parents beside it not yet given their depth. */
  const waiting = new Map<string, number>();
  for (const t of txs) {
    // Equal confirmations, counted from one tip, are one height.
    const parents = new Set(t.inputs.map((i) => i.txid).filter((p) => byTxid.get(p)?.confirmations === t.confirmations));
    waiting.set(t.txid, parents.size);
    for (const p of parents) {
      const siblings = children.get(p);
      if (siblings) siblings.push(t.txid);
      else children.set(p, [t.txid]);
    }
  }
  const depth = new Map<string, number>();
  const ready = txs.filter((t) => waiting.get(t.txid) === 0).map((t) => t.txid);
  for (const txid of ready) depth.set(txid, 0);
  for (let txid = ready.pop(); txid !== undefined; txid = ready.pop()) {
    for (const child of children.get(txid) ?? []) {
      depth.set(child, Math.max(depth.get(child) ?? 0, depth.get(txid)! + 1));
      const left = waiting.get(child)! - 1;
      waiting.set(child, left);
      if (left === 0) ready.push(child);
    }
  }
  return depth;
}
