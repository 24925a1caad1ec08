/**
 * The channel protocol's control messages (version 2), JSON over the peer link; payments
 * and signed states travel in binary frames (payments-codec.ts). Every message a peer sends
 * is parsed here, field by field, before anything acts on it; amounts travel as decimal
 * strings because they are bigints. Every message carries the version, and a peer of
 * another version is refused naming both.
 */
import { SwarmpayError } from '../errors.js';
import { ShapeError, hex, int, str, type Obj } from '../util/shape.js';
import { encodeVersioned, parseVersioned } from '../peer/json-messages.js';
import { MAX_MONEY } from '../bitcoin/amount.js';
import { MAX_PAYOUT_SCRIPT_BYTES } from '../bitcoin/policy.js';
import type { ErrorCode } from '../errors.js';
import { Conversation, type ConversationOptions, type Protocol } from '../peer/conversation.js';
import { MAX_CLOSE_MARGIN } from './defaults.js';
import type { PeerLink } from '../peer/link.js';

const PROTOCOL_VERSION = 2;

/**
 * Payments a payer may send ahead of their acknowledgement, and so at most what waits
 * at the payee for a signed state to cover it: the protocol's window.
 */
export const MAX_UNCOVERED = 16_384;

export type Message =
  | { t: 'open'; id: string; network: string; capacity: bigint; expiry: number; closeFee: bigint; payerPubkey: string; payerScript: string }
  | { t: 'accept'; id: string; payeePubkey: string; payeeScript: string; confirmations: number; closeMargin: number; ticket: string }
  | { t: 'funded'; id: string; tx: string; vout: number; ticket: string }
  | { t: 'hello'; id: string }
  | { t: 'state'; id: string; seq: number; cumulative: bigint; sig: string | null; confirmations: number; status: string }
  | { t: 'known?'; id: string; ids: string[] }
  | { t: 'known'; id: string; ids: string[] }
  | { t: 'ack'; id: string; seq: number }
  | { t: 'close'; id: string }
  | { t: 'closed'; id: string; txid: string }
  | { t: 'error'; code: string; message: string };

/** Batch payment ids: short printable strings, so a peer cannot make us store megabytes per id. */
const PID = /^[\x21-\x7e]{1,64}$/;
const CHANNEL_ID = 16;
const MAX_IDS = 1000;
/** A funding transaction: one wallet payment of a few dozen inputs at most. */
export const MAX_TX_BYTES = 16_000;
/** The payee's sealed open ticket (src/channel/ticket.ts): a few hundred bytes. */
const MAX_TICKET_BYTES = 1024;
/** Confirmations a payee may ask for: at least one, as the funding signals RBF. */
export const MIN_CONFIRMATIONS = 1;
export const MAX_CONFIRMATIONS = 100;
export { MAX_CLOSE_MARGIN };

/** Hex of at most `max` bytes: checked before the string is decoded or stored. */
function boundedHex(o: Obj, k: string, where: string, max: number): string {
  const v = o[k];
  if (typeof v === 'string' && v.length > 2 * max) throw new ShapeError(`${where}.${k} must be at most ${max} bytes`);
  return hex(o, k, where);
}

function amount(o: Obj, k: string, where: string): bigint {
  const s = str(o, k, where);
  if (!/^(0|[1-9][0-9]{0,15})$/.test(s) || BigInt(s) > MAX_MONEY) throw new ShapeError(`${where}.${k} must be an amount in sats`);
  return BigInt(s);
}

function ids(o: Obj, k: string, where: string): string[] {
  const v = o[k];
  if (!Array.isArray(v) || v.length > MAX_IDS || !v.every((x) => typeof x === 'string' && PID.test(x))) throw new ShapeError(`${where}.${k} must be a list of at most ${MAX_IDS} payment ids`);
  return v as string[];
}

/** A short lowercase name (a network, a status): what a peer cannot use to fill logs. */
function word(o: Obj, k: string, where: string): string {
  const v = str(o, k, where);
  if (!/^[a-z]{1,16}$/.test(v)) throw new ShapeError(`${where}.${k} must be a word of 1 to 16 letters`);
  return v;
}

function printable(s: string, max: number): string {
  return s.slice(0, max).replace(/[\u0000-\u001f\u007f-\u009f]/g, ' ');
}

function parseBody(o: Obj): Message {
  const t = str(o, 't', 'message');
  const w = `message ${t}`;
  const id = () => hex(o, 'id', w, CHANNEL_ID / 2);
  switch (t) {
    case 'open':
      return { t, id: id(), network: word(o, 'network', w), capacity: amount(o, 'capacity', w), expiry: int(o, 'expiry', w, 1, 499_999_999), closeFee: amount(o, 'closeFee', w), payerPubkey: hex(o, 'payerPubkey', w, 33), payerScript: boundedHex(o, 'payerScript', w, MAX_PAYOUT_SCRIPT_BYTES) };
    case 'accept':
      return {
        t, id: id(), payeePubkey: hex(o, 'payeePubkey', w, 33), payeeScript: boundedHex(o, 'payeeScript', w, MAX_PAYOUT_SCRIPT_BYTES),
        confirmations: int(o, 'confirmations', w, MIN_CONFIRMATIONS, MAX_CONFIRMATIONS), closeMargin: int(o, 'closeMargin', w, 1, MAX_CLOSE_MARGIN), ticket: boundedHex(o, 'ticket', w, MAX_TICKET_BYTES),
      };
    case 'funded':
      return { t, id: id(), tx: boundedHex(o, 'tx', w, MAX_TX_BYTES), vout: int(o, 'vout', w, 0, 10_000), ticket: boundedHex(o, 'ticket', w, MAX_TICKET_BYTES) };
    case 'hello':
    case 'close':
      return { t, id: id() };
    case 'state':
      return { t, id: id(), seq: int(o, 'seq', w), cumulative: amount(o, 'cumulative', w), sig: o.sig === null ? null : hex(o, 'sig', w, 64), confirmations: int(o, 'confirmations', w), status: word(o, 'status', w) };
    case 'known?':
    case 'known':
      return { t, id: id(), ids: ids(o, 'ids', w) };
    case 'ack':
      return { t, id: id(), seq: int(o, 'seq', w) };
    case 'closed':
      return { t, id: id(), txid: hex(o, 'txid', w, 32) };
    case 'error':
      // A peer's words end up in logs and on terminals: no control characters, and short.
      return { t, code: printable(str(o, 'code', w), 64), message: printable(str(o, 'message', w), 500) };
    default:
      throw new ShapeError(`unknown message type "${t.slice(0, 32)}"`);
  }
}

/** Parses one message from the peer; anything malformed is a protocol violation. */
export function parseMessage(bytes: Uint8Array): Message {
  return parseVersioned(bytes, 'channel', PROTOCOL_VERSION, parseBody);
}

export function encodeMessage(m: Message): Buffer {
  return encodeVersioned(PROTOCOL_VERSION, m);
}

/**
 * Refusals whose meaning the payer acts on keep their code across the link (the payee's
 * word, so only ever as a reason to stop, never to pay); any other is CHANNEL_REFUSED.
 */
const PEER_CODES: ReadonlySet<string> = new Set<ErrorCode>(['CHANNEL_EXPIRING', 'CHANNEL_SPENT', 'CHANNEL_STATE', 'CHANNEL_NOT_FOUND', 'FUNDING_MISMATCH']);

/** The error a peer's `error` message stands for, on our side. */
function peerError(m: Extract<Message, { t: 'error' }>): SwarmpayError {
  const code: ErrorCode = PEER_CODES.has(m.code) ? (m.code as ErrorCode) : 'CHANNEL_REFUSED';
  return new SwarmpayError(code, `the peer refused: ${m.code}: ${m.message}`, { details: { peerCode: m.code } });
}

/** The channel protocol on a peer link: its messages, and the peer's `error` as our error. */
export const CHANNEL_PROTOCOL: Protocol<Message> = {
  name: 'channel',
  parse: parseMessage,
  encode: encodeMessage,
  refusal: (m) => (m.t === 'error' ? peerError(m) : null),
};

export type ChannelConversation = Conversation<Message>;

/** A conversation in the channel protocol over `link`; `hint` is what the user may do if the peer goes. */
export function channelConversation(link: PeerLink, o: ConversationOptions): ChannelConversation {
  return new Conversation(link, CHANNEL_PROTOCOL, o);
}
