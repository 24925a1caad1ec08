/** An escrow's HTLC on chain: its output, and what became of it (claimed, refunded, or not yet spent). */
import { SwarmpayError } from '../errors.js';
import type { NetworkName } from '../bitcoin/network.js';
import { htlcOutput, readSpend, type HtlcTerms } from '../bitcoin/htlc.js';
import type { ChainBackend } from '../chain/backend.js';
import type { Outpoint } from '../bitcoin/outpoint.js';
import { htlcTerms } from './store.js';
import type { AcceptedRecord } from './record.js';

export interface Htlc {
  terms: HtlcTerms;
  funding: Outpoint;
  address: string;
}

export function htlcOf(rec: AcceptedRecord, network: NetworkName): Htlc {
  const terms = htlcTerms(rec);
  return { terms, funding: rec.acceptance.funding, address: htlcOutput(terms, network).address };
}

/** A claim's key is the preimage it revealed: K, unless the seller of a legacy escrow cheated with a preimage of H of another length. */
export type HtlcSpend = { kind: 'claim'; txid: string; key: Buffer; confirmations: number } | { kind: 'refund'; txid: string; confirmations: number };

/** How the HTLC was spent, if it was: the chain, mempool included, is the record of truth. */
export async function htlcSpend(chain: ChainBackend, h: Htlc): Promise<HtlcSpend | null> {
  const spend = await chain.findSpend(h.funding, h.address);
  if (spend === null) return null;
  const read = readSpend(h.terms, spend.witness);
  // A valid spend of our exact script takes one of its two branches; anything else means
  // the node and we disagree about the script, which is a bug, not a peer's doing.
  if (read === null) throw new SwarmpayError('INTERNAL', `transaction ${spend.txid} spends the escrow output with a witness swarmpay cannot read`);
  return read.kind === 'claim' ? { kind: 'claim', txid: spend.txid, key: read.key, confirmations: spend.confirmations } : { kind: 'refund', txid: spend.txid, confirmations: spend.confirmations };
}
