/**
 * Child pays for parent, from the wallet: when a transaction paying the wallet is stuck
 * unconfirmed at a low fee (a channel close whose fee was fixed at open), a child spends
 * the wallet's outputs of it back to the wallet, paying enough fee for the two together.
 * Planned from the xpub and the chain, then signed with the seed, as a payment is.
 */
import type { PublicNode } from './xpub.js';
import { Transaction } from 'bitcoinjs-lib';
import type { ChainBackend } from '../chain/backend.js';
import { SwarmpayError } from '../errors.js';
import { cpfpChildFee, packageFeeRate } from '../bitcoin/cpfp.js';
import type { NetworkName } from '../bitcoin/network.js';
import { refuse } from '../bitcoin/p2wsh-spend.js';
import { checkFeeRate, dustThreshold } from '../bitcoin/policy.js';
import { checkPlan, type SignedTx, type SpendPlan } from '../bitcoin/spend.js';
import { estimateVbytes, isSpendable, largestFirst } from './coin-select.js';
import { scriptOwners, type DerivedAddress, type ScriptOwners } from './hd.js';
import { isExcluded, ownedUtxos, signSend, type OwnedUtxo } from './send.js';
import { firstSpent, walletOutputs, type WalletOutput } from './descendants.js';
import type { FeeRate } from '../bitcoin/fee-rate.js';

export interface CpfpParent {
  txid: string;
  hex: string;
  /** The parent's fee in sats: the caller knows what its inputs spend. */
  fee: bigint;
}

export interface CpfpPlan {
  parent: CpfpParent;
  parentVsize: bigint;
  spend: SpendPlan;
  /** The key path of each input, in input order. */
  owners: DerivedAddress[];
  /** The child's one output, back to the wallet. */
  change: { address: string; value: bigint };
  /** From the input and output count; the signed child is this size or a little smaller. */
  childVsize: bigint;
  /** (parent fee + child fee) / (parent vsize + child vsize), rounded down: at least the target. */
  packageFeeRate: FeeRate;
  /** The earlier child this one replaces, as the node has it; null when there is none to replace. */
  replaces: { txid: string; fee: bigint; vsize: bigint } | null;
  /** The wallet's unspent coins it takes besides the parent's outputs and the earlier child's: what another command could pick too. */
  taken: OwnedUtxo[];
  /** The earlier child's outputs (to this wallet): held until this child is broadcast, so that no payment of the wallet's spends what it replaces. */
  holds: WalletOutput[];
}

export interface CpfpOptions {
  /**
   * An earlier child of the same parent for this one to replace (the SignedTx signCpfp
   * returned will do). If the node no longer has it, the new child replaces nothing.
   */
  replacing?: { hex: string } | undefined;
  /**
   * Spend the parent's outputs to this wallet and nothing else: the child never pays more
   * than what the parent brings the wallet (a bump nobody asked for in person).
   */
  parentOnly?: boolean;
  /** Coins ("txid:vout") another running command holds: never taken besides the parent's outputs. */
  exclude?: ReadonlySet<string>;
}

/** The parent is in a block already: there is nothing to bump. */
export class ParentConfirmedError extends SwarmpayError {
  constructor(
    readonly txid: string,
    readonly confirmations: number,
  ) {
    super('TX_CHECK_FAILED', `transaction ${txid} is already confirmed (${confirmations} confirmation${confirmations === 1 ? '' : 's'}): there is nothing to bump`, {
      hint: 'nothing needs doing; nothing was signed or sent',
      details: { txid, confirmations, parentConfirmed: true },
    });
  }
}

/**
 * Plans a child that spends every output of `parent` paying this wallet (unconfirmed), plus
 * confirmed wallet coins, largest first, if those do not cover the fee, to one change
 * address of the wallet, so that (parent fee + child fee) / (parent vsize + child vsize)
 * reaches `feeRate`.
 */
export async function planCpfp(chain: ChainBackend, account: PublicNode, network: NetworkName, parent: CpfpParent, feeRate: FeeRate, opts: CpfpOptions = {}): Promise<CpfpPlan> {
  // The rate and the transactions first: bad input fails before any chain query.
  checkFeeRate(feeRate);
  const parentTx = parseTx(parent.hex, 'the parent');
  if (parentTx.getId() !== parent.txid) throw refuse(`the parent given as ${parent.txid} is transaction ${parentTx.getId()}`);
  if (parent.fee < 0n) throw refuse(`the parent's fee of ${parent.fee} sats is negative`);
  const earlierTx = opts.replacing ? parseTx(opts.replacing.hex, 'the earlier child') : null;

  const known = await chain.getTransaction(parent.txid);
  if (known === null) {
    throw new SwarmpayError('TX_NOT_FOUND', `transaction ${parent.txid} is not known to the node`, {
      hint: 'broadcast it first: the node takes no child of a transaction it does not have',
    });
  }
  if (known.confirmations > 0) throw new ParentConfirmedError(parent.txid, known.confirmations);

  const { utxos, nextChange, used } = await ownedUtxos(chain, account, network);
  const ownerOf = scriptOwners(used);
  const earlier = earlierTx ? await earlierChild(chain, earlierTx, parentTx, ownerOf, network) : null;

  const required = distinct([...utxos.filter((u) => u.txid === parent.txid), ...(earlier?.fromParent ?? [])]);
  if (required.length === 0) throw await nothingToBumpWith(chain, parentTx, ownerOf);
  // Confirmed coins only: an unconfirmed one would tie the child to yet another transaction,
  // and a replacement may not spend new unconfirmed outputs (BIP125 rule 2).
  const extra = opts.parentOnly ? [] : distinct([...utxos.filter((u) => u.txid !== parent.txid && isSpendable(u) && !isExcluded(u, opts.exclude)), ...(earlier?.freed ?? [])]).sort(largestFirst);

  const parentVsize = BigInt(parentTx.virtualSize());
  const changeScript = nextChange.script;
  const dust = dustThreshold(changeScript);
  const inputs = [...required];
  for (let next = 0; ; next++) {
    const childVsize = estimateVbytes(inputs.length, [changeScript]);
    const fee = cpfpChildFee({ parentFee: parent.fee, parentVsize, childVsize, feeRate, replacing: earlier ?? undefined });
    const sum = inputs.reduce((a, c) => a + c.value, 0n);
    const value = sum - fee;
    if (value >= dust) {
      // A child pays the wallet back: its output is what the fee cap weighs the fee against.
      const spend: SpendPlan = { inputs: inputs.map(({ txid, vout, value, script }) => ({ txid, vout, value, script })), outputs: [{ script: changeScript, value }], fee, feeRate, paid: value };
      checkPlan(spend);
      return {
        parent,
        parentVsize,
        spend,
        owners: inputs.map((c) => c.owner),
        change: { address: nextChange.address, value },
        childVsize,
        packageFeeRate: packageFeeRate(parent.fee, parentVsize, fee, childVsize),
        replaces: earlier && { txid: earlier.txid, fee: earlier.fee, vsize: earlier.vsize },
        taken: inputs.filter((c) => !required.includes(c) && !(earlier?.freed.includes(c) ?? false)),
        holds: earlier?.outputs ?? [],
      };
    }
    const more = extra[next];
    if (more === undefined) {
      const needed = fee + dust;
      throw new SwarmpayError('INSUFFICIENT_FUNDS', `bumping ${parent.txid} to ${feeRate} sat/vB needs ${needed} sats in the child (a fee of ${fee} and change of at least ${dust}); the wallet's outputs of it${opts.parentOnly ? '' : ' and its confirmed coins'} hold ${sum}`, {
        hint: opts.parentOnly ? 'only its own outputs were to pay; bump by hand to add the wallet\'s coins, or to a lower fee rate' : 'fund the wallet or wait for its coins to confirm, or bump to a lower fee rate',
        details: { available: sum.toString(), needed: needed.toString() },
      });
    }
    inputs.push(more);
  }
}

/** Signs with keys derived from the seed, through the wallet's one signer (which checks the plan again first). */
export function signCpfp(plan: CpfpPlan, seed: Uint8Array, network: NetworkName): SignedTx {
  return signSend(plan, seed, network);
}

interface EarlierChild {
  txid: string;
  fee: bigint;
  vsize: bigint;
  /** The parent's outputs it spends: the new child spends them again. */
  fromParent: OwnedUtxo[];
  /** Its confirmed wallet coins, free again once it is replaced. */
  freed: OwnedUtxo[];
  /** Its outputs to this wallet. */
  outputs: WalletOutput[];
}

/**
 * The earlier child, from the node: its fee and size (what BIP125 makes the replacement
 * outbid) and its inputs, which the wallet's coin list shows as spent while it is in the
 * mempool. Null when the node no longer has it: its coins are unspent again. Refused when
 * a transaction spends its output (a payment of the wallet's from that change): replacing
 * the child would cancel that payment too.
 */
async function earlierChild(chain: ChainBackend, child: Transaction, parent: Transaction, ownerOf: ScriptOwners, network: NetworkName): Promise<EarlierChild | null> {
  const txid = child.getId();
  if ((await chain.getTransaction(txid)) === null) return null;
  const spent = await firstSpent(chain, txid, child.outs, network);
  if (spent !== null) {
    throw new SwarmpayError('TX_CHECK_FAILED', `the earlier child ${txid} cannot be replaced: its output ${spent.vout} is already spent by ${spent.by.txid}, and a replacement would cancel that payment too`, {
      hint: `bump ${spent.by.txid} instead if it is this wallet's (its fee lifts the parent too), or wait; nothing was signed or sent`,
      details: { spentBy: spent.by.txid },
    });
  }
  const parentTxid = parent.getId();
  const fromParent: OwnedUtxo[] = [];
  const freed: OwnedUtxo[] = [];
  let inSum = 0n;
  for (const i of child.ins) {
    const prevTxid = Buffer.from(i.hash).reverse().toString('hex');
    const prev = prevTxid === parentTxid ? { outputs: parent.outs, confirmations: 0, coinbase: false } : await chain.getTransaction(prevTxid);
    const out = prev?.outputs[i.index];
    const owner = out && ownerOf(out.script);
    if (!prev || !out || !owner) throw refuse(`the earlier child ${txid} spends ${prevTxid}:${i.index}, which is not this wallet's`);
    inSum += out.value;
    const coin: OwnedUtxo = { txid: prevTxid, vout: i.index, value: out.value, script: out.script, address: owner.address, confirmations: prev.confirmations, coinbase: prev.coinbase, owner };
    if (prevTxid === parentTxid) fromParent.push(coin);
    else if (isSpendable(coin)) freed.push(coin);
  }
  if (fromParent.length === 0) throw refuse(`transaction ${txid} spends nothing of ${parentTxid}: it is not a child of it to replace`);
  return { txid, fee: inSum - child.outs.reduce((a, o) => a + o.value, 0n), vsize: BigInt(child.virtualSize()), fromParent, freed, outputs: walletOutputs(txid, child.outs, ownerOf) };
}

/** Why the wallet has no unspent output of the parent: it never had one, or a child spends it already. */
async function nothingToBumpWith(chain: ChainBackend, parent: Transaction, ownerOf: ScriptOwners): Promise<SwarmpayError> {
  const txid = parent.getId();
  const ours = parent.outs.map((o, vout) => ({ vout, owner: ownerOf(o.script) })).find((o) => o.owner !== undefined);
  if (!ours?.owner) return refuse(`transaction ${txid} pays this wallet nothing, so the wallet has nothing to bump it with`);
  const spend = await chain.findSpend({ txid, vout: ours.vout }, ours.owner.address);
  if (spend === null) return refuse(`this wallet's outputs of ${txid} are not among the unspent coins the node lists for it`);
  return new SwarmpayError('TX_CHECK_FAILED', `this wallet's outputs of ${txid} are already spent by ${spend.txid}`, {
    hint: 'if that is an earlier child, bump again by replacing it; nothing was signed or sent',
    details: { spentBy: spend.txid },
  });
}

function parseTx(hex: string, what: string): Transaction {
  try {
    return Transaction.fromHex(hex);
  } catch (e) {
    throw refuse(`${what} is not a transaction: ${(e as Error).message}`);
  }
}

function distinct(coins: OwnedUtxo[]): OwnedUtxo[] {
  return [...new Map(coins.map((c) => [`${c.txid}:${c.vout}`, c])).values()];
}
