/**
 * `wallet history`: the chain's view of the wallet's transactions (src/wallet/history.ts),
 * labelled from what the wallet knows of them: its channels' and escrows' records (their
 * fundings, closes, refunds, claims, and a channel close's or refund's CPFP children) and
 * the payments `wallet bump` replaced. An escrow claim's CPFP children (`escrow serve`
 * bumps a claim that waits) are in no record: they show as `self`.
 *
 * The records live in the keystore's secret, opened only when a transaction could be a
 * contract's (it pays or spends a P2WSH output; else `contracts: 'none'`): a keystore the
 * TPM seals is opened with it (read only, no counter advanced), a passphrase keystore only
 * when the caller gives the passphrase. Without them the history is still whole, but channel
 * and escrow transactions show as plain sends and receives, and the result says why: the
 * passphrase was not given (`locked`), or the keystore could not be opened (`unavailable`:
 * its TPM unreachable or its PCRs changed, a wrong passphrase), as in `swarmpay info`: the
 * labels are not worth failing the history for.
 */
import { keystorePath, readKeystore, type ContractStore } from '../keystore/keystore.js';
import { listChannels } from '../channel/store.js';
import { spendOf } from '../channel/record.js';
import { listEscrows } from '../escrow/store.js';
import { SwarmpayError } from '../errors.js';
import { openContracts } from '../wallet/contract-wallet.js';
import { chainHistory, historyEntries, mayHaveContracts, type HistoryEntry, type TxLabel } from '../wallet/history.js';
import { readReplacements } from '../wallet/replacements.js';
import { walletAccount } from '../wallet/wallet.js';
import type { Environment } from './environment.js';
import { unlockerFor, type Credentials } from './credentials.js';
import { unavailable, type PartError } from './info.js';

export type { HistoryEntry };

export interface History {
  /**
   * Whether channel and escrow transactions are labelled: `labelled`; `none`, no
   * transaction could be a contract's, so there is nothing to label; `locked`, a passphrase
   * keystore and no passphrase; `unavailable`, the keystore could not be opened
   * (`contractsError` says why). Locked or unavailable, they show as sends and receives.
   */
  contracts: 'labelled' | 'none' | 'locked' | 'unavailable';
  /** Why the keystore could not be opened (`contracts: 'unavailable'`). */
  contractsError?: PartError;
  /** Newest first: the mempool on top. */
  transactions: HistoryEntry[];
}

export interface HistoryOptions extends Credentials {
  /** Only the newest this many: a whole number from 1. */
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

/** What the records say of the history's transactions, and whether they could be read. */
async function recordLabels(env: Environment, o: HistoryOptions): Promise<Pick<History, 'contracts' | 'contractsError'> & { labels: Map<string, TxLabel> }> {
  const protector = readKeystore(keystorePath(env.networkDir), env.network).header.protector.type;
  if (protector === 'passphrase' && o.passphrase === undefined) return { contracts: 'locked', labels: new Map() };
  try {
    const ctx = await openContracts(env.networkDir, env.network, unlockerFor(env, o, 'other'), env.chainOnDemand());
    return { contracts: 'labelled', labels: contractLabels(ctx.session) };
  } catch (e) {
    return { contracts: 'unavailable', contractsError: unavailable(e).error, labels: new Map() };
  }
}

export async function readHistory(env: Environment, o: HistoryOptions = {}): Promise<History> {
  if (o.limit !== undefined && !(Number.isSafeInteger(o.limit) && o.limit >= 1)) {
    throw new SwarmpayError('USAGE', `the limit must be a whole number from 1, not ${o.limit}`, { hint: 'leave it out for the whole history' });
  }
  const account = walletAccount(env.networkDir, env.network);
  const chain = await chainHistory(env.chain(), account, env.network);
  const { labels, ...contracts } = mayHaveContracts(chain) ? await recordLabels(env, o) : { contracts: 'none' as const, labels: new Map<string, TxLabel>() };
  const bumps = [...readReplacements(env.networkDir)].map(([txid, replaces]): [string, TxLabel] => [txid, { kind: 'bump', replaces }]);
  const all = historyEntries(chain, new Map([...bumps, ...labels]));
  return { ...contracts, transactions: o.limit === undefined ? all : all.slice(0, o.limit) };
}
