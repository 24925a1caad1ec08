/**
 * `wallet history`: the chain's view of the wallet's transactions (src/wallet/history.ts),
 * labelled from what the wallet knows of them: its channels' and escrows' records (their
 * fundings, closes, refunds, claims and CPFP children) and the payments `wallet bump`
 * replaced.
 *
 * The records live in the keystore's secret: a keystore the TPM seals is opened with it
 * (read only, no counter advanced), a passphrase keystore only when the caller gives the
 * passphrase. Without it the history is still whole, but channel and escrow transactions
 * show as plain sends and receives, and the result says so (`contracts: 'locked'`).
 */
import { keystorePath, readKeystore, type ContractStore } from '../keystore/keystore.js';
import { listChannels } from '../channel/store.js';
import { spendOf } from '../channel/record.js';
import { listEscrows } from '../escrow/store.js';
import { openContracts } from '../wallet/contract-wallet.js';
import { walletHistory, type HistoryEntry, type TxLabel } from '../wallet/history.js';
import { readReplacements } from '../wallet/replacements.js';
import { walletAccount } from '../wallet/wallet.js';
import type { Environment } from './environment.js';
import { unlockerFor, type Credentials } from './credentials.js';

export type { HistoryEntry };

export interface History {
  /** Whether channel and escrow transactions are labelled, or the keystore was not opened to read their records. */
  contracts: 'labelled' | 'locked';
  /** Newest first: the mempool on top. */
  transactions: HistoryEntry[];
}

export interface HistoryOptions extends Credentials {
  /** Only the newest this many. */
  limit?: number;
}

/** Each contract transaction of the records → what it is, and whose. */
function contractLabels(store: ContractStore): Map<string, TxLabel> {
  const labels = new Map<string, TxLabel>();
  const add = (txid: string, kind: TxLabel['kind'], whose: 'channels' | 'escrows', id: string) => {
    const l = labels.get(txid) ?? { kind, [whose]: [] };
    // One funding may open many channels; a transaction is never two kinds of step.
    if (l.kind === kind) (l[whose] ??= []).push(id);
    labels.set(txid, l);
  };
  for (const ch of listChannels(store)) {
    add(ch.funding.txid, 'channel-funding', 'channels', ch.id);
    const spend = spendOf(ch);
    if (spend === null) continue;
    add(spend.tx.txid, spend.kind === 'close' ? 'channel-close' : 'channel-refund', 'channels', ch.id);
    for (const b of spend.tx.bumps) add(b.txid, 'channel-cpfp', 'channels', ch.id);
  }
  for (const e of listEscrows(store)) {
    if (e.status === 'offered') continue;
    add(e.acceptance.funding.txid, 'escrow-funding', 'escrows', e.id);
    if ('claimTxid' in e && e.claimTxid !== null) add(e.claimTxid, 'escrow-claim', 'escrows', e.id);
    if ('refundTxid' in e) add(e.refundTxid, 'escrow-refund', 'escrows', e.id);
  }
  return labels;
}

export async function readHistory(env: Environment, o: HistoryOptions = {}): Promise<History> {
  const account = walletAccount(env.networkDir, env.network);
  const protector = readKeystore(keystorePath(env.networkDir), env.network).header.protector.type;
  const locked = protector === 'passphrase' && o.passphrase === undefined;
  const labels = async () => {
    const bumps = new Map<string, TxLabel>([...readReplacements(env.networkDir)].map(([txid, replaces]) => [txid, { kind: 'bump', replaces }]));
    if (locked) return bumps;
    const ctx = await openContracts(env.networkDir, env.network, unlockerFor(env, o, 'other'), env.chainOnDemand());
    return new Map([...bumps, ...contractLabels(ctx.session)]);
  };
  const all = await walletHistory(env.chain(), account, env.network, labels);
  return { contracts: locked ? 'locked' : 'labelled', transactions: o.limit === undefined ? all : all.slice(0, o.limit) };
}
