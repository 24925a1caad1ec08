/**
 * The payee's open ticket. A payee that stored every channel it agreed to would let any
 * key make it store, and keep, a record per `open` (nothing is funded at that point). So
 * the payee stores nothing at `open`: it seals what it agreed (terms, its key index, its
 * confirmations and close margin, the payer's static key) into a ticket, under a key only
 * it has, and the payer sends the ticket back with `funded`, at once or much later (after
 * either side failed). The ticket is authenticated and bound to the payer's static key, so
 * it cannot be forged, altered, or used by another peer; a channel id stored once cannot
 * be opened again, so it cannot be replayed. It lapses when the channel could no longer
 * carry a payment (the tip within the close margin of the expiry).
 */
import { SwarmpayError } from '../errors.js';
import type { ContractStore } from '../keystore/keystore.js';
import { open, seal } from '../keystore/crypto.js';
import { canonicalJson } from '../util/canonical-json.js';
import { decodeTerms, type StoredTerms } from './record.js';
import { ShapeError, asObj, hex, int } from '../util/shape.js';

export interface Ticket {
  id: string;
  terms: StoredTerms;
  keyIndex: number;
  confirmations: number;
  closeMargin: number;
}

const NAME = 'channel-open-ticket';
const IV = 12;
const TAG = 16;

function aad(payerKey: Buffer): string {
  return `swarmpay/${NAME}/v1/${payerKey.toString('hex')}`;
}

/** The ticket for `payerKey` (the peer's static key), hex. */
export function sealTicket(session: ContractStore, payerKey: Buffer, t: Ticket): string {
  const body = { id: t.id, terms: { ...t.terms }, keyIndex: t.keyIndex, confirmations: t.confirmations, closeMargin: t.closeMargin };
  const s = seal(session.subkey(NAME), Buffer.from(canonicalJson(body), 'utf8'), aad(payerKey));
  return Buffer.concat([Buffer.from(s.iv, 'hex'), Buffer.from(s.ct, 'base64'), Buffer.from(s.tag, 'hex')]).toString('hex');
}

/** What a ticket holds, if this payee sealed it for this peer; otherwise CHANNEL_REFUSED. */
export function openTicket(session: ContractStore, payerKey: Buffer, ticketHex: string): Ticket {
  const b = Buffer.from(ticketHex, 'hex');
  const plain = b.length <= IV + TAG ? null : open(session.subkey(NAME), { iv: b.subarray(0, IV).toString('hex'), ct: b.subarray(IV, b.length - TAG).toString('base64'), tag: b.subarray(b.length - TAG).toString('hex') }, aad(payerKey));
  if (plain === null) {
    throw new SwarmpayError('CHANNEL_REFUSED', 'the open ticket is not one this payee gave this peer', { hint: 'open the channel again; nothing was stored' });
  }
  // Sealed by us: a bad shape is a bug, refused before anything is built on it.
  const w = 'open ticket';
  try {
    const o = asObj(JSON.parse(plain.toString('utf8')), w);
    return { id: hex(o, 'id', w, 8), terms: decodeTerms(o.terms, `${w}.terms`), keyIndex: int(o, 'keyIndex', w), confirmations: int(o, 'confirmations', w), closeMargin: int(o, 'closeMargin', w) };
  } catch (e) {
    if (!(e instanceof ShapeError || e instanceof SyntaxError)) throw e;
    throw new SwarmpayError('INTERNAL', `this payee sealed an open ticket it cannot read: ${e.message}`);
  }
}
