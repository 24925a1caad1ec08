/**
 * Raising the fee of a channel's pending spend (the payee's close, the payer's refund)
 * without touching it: a child from this wallet spends the spend's outputs that pay this
 * wallet (CPFP), so the two together pay the asked rate. The close was signed by both
 * sides at a fee fixed at open; CPFP is how either side outbids what the fee market did
 * since. The channel records each bump, so the next one replaces it rather than adding to it.
 */
import { SwarmpayError } from '../errors.js';
import { spendFee } from '../bitcoin/channel.js';
import { broadcastOnce } from '../chain/broadcast.js';
import type { ContractContext } from '../wallet/contract-wallet.js';
import { spendOf, termsOf, updateChannel, type Bump, type ChannelRecord } from './store.js';
import type { FeeRate } from '../bitcoin/fee-rate.js';

export async function bumpSpend(ctx: ContractContext, rec: ChannelRecord, feeRate: FeeRate, opts: { parentOnly?: boolean } = {}): Promise<Bump> {
  const pending = spendOf(rec);
  if (pending === null || rec.status === 'closed' || rec.status === 'refunded') {
    throw new SwarmpayError('CHANNEL_STATE', `channel ${rec.id} is ${rec.status}: it has no close or refund waiting to confirm`, { hint: 'a bump raises the fee of a close or refund that is out but not yet confirmed' });
  }
  const parent = await ctx.chain.getTransaction(pending.tx.txid);
  if (parent === null) {
    throw new SwarmpayError('CHANNEL_STATE', `the ${pending.kind} ${pending.tx.txid} of channel ${rec.id} is not in the node's mempool`, {
      hint: pending.kind === 'close' ? 'the payee\'s `channel serve` broadcasts it again; then bump' : `broadcast it again with \`swarmpay channel refund ${rec.id}\`, then bump`,
    });
  }
  if (parent.confirmations > 0) throw new SwarmpayError('CHANNEL_STATE', `the ${pending.kind} ${parent.txid} of channel ${rec.id} is already confirmed`, { hint: 'nothing to bump' });
  const last = pending.tx.bumps[pending.tx.bumps.length - 1];
  // An earlier bump still in the mempool is replaced (and so must be outbid); one that left it is not.
  const earlier = last === undefined ? null : await ctx.chain.getTransaction(last.txid);
  const replacing = earlier === null ? undefined : { hex: earlier.hex };
  const child = await ctx.wallet.bump({ txid: parent.txid, hex: parent.hex, fee: spendFee(termsOf(rec), parent.outputs) }, feeRate, { replacing, ...opts }, async (c) => {
    await broadcastOnce(ctx.chain, c.hex, c.txid);
    return c;
  });
  const bump: Bump = { txid: child.txid, feeRate: feeRate.toString(), fee: child.fee.toString(), vsize: child.vsize, height: await ctx.chain.tipHeight() };
  await updateChannel(ctx.session, rec.id, (r) => {
    if ((r.status === 'closing' || r.status === 'closed') && r.close.txid === parent.txid) return { ...r, close: { ...r.close, bumps: [...r.close.bumps, bump] } };
    if ((r.status === 'refunding' || r.status === 'refunded') && r.refund.txid === parent.txid) return { ...r, refund: { ...r.refund, bumps: [...r.refund.bumps, bump] } };
    return null;
  }, false);
  return bump;
}
