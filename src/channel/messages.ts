/**
 * The channel protocol's messages (version 1), JSON over the peer link. Every message a
 * peer sends is parsed here, field by field, before anything acts on it; amounts travel as
 * decimal strings because they are bigints.
 */
import { SwarmpayError } from '../errors.js';
import { ShapeError, hex, int, str, type Obj } from '../util/shape.js';
import { encodeVersioned, parseVersioned } from '../peer/json-messages.js';
import { MAX_MONEY } from '../bitcoin/amount.js';

export const PROTOCOL_VERSION = 1;

export type Message =
  | { t: 'open'; id: string; network: string; capacity: bigint; expiry: number; closeFee: bigint; payerPubkey: string; payerScript: string }
  | { t: 'accept'; id: string; payeePubkey: string; payeeScript: string; confirmations: number }
  | { t: 'funded'; id: string; tx: string; vout: number }
  | { t: 'hello'; id: string }
  | { t: 'state'; id: string; seq: number; cumulative: bigint; sig: string | null; confirmations: number; status: string }
  | { t: 'known?'; id: string; ids: string[] }
  | { t: 'known'; id: string; ids: string[] }
  | { t: 'pay'; id: string; seq: number; cumulative: bigint; sig: string; pid: string | null }
  | { t: 'ack'; id: string; seq: number }
  | { t: 'close'; id: string }
  | { t: 'closed'; id: string; txid: string }
  | { t: 'error'; code: string; message: string };

export type MessageType = Message['t'];

/** Batch payment ids: short printable strings, so a peer cannot make us store megabytes per id. */
const PID = /^[\x21-\x7e]{1,64}$/;
const CHANNEL_ID = 16;
const MAX_IDS = 1000;

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

function parseBody(o: Obj): Message {
  const t = str(o, 't', 'message');
  const w = `message ${t}`;
  const id = () => hex(o, 'id', w, CHANNEL_ID / 2);
  switch (t) {
    case 'open':
      return { t, id: id(), network: str(o, 'network', w), capacity: amount(o, 'capacity', w), expiry: int(o, 'expiry', w, 1, 499_999_999), closeFee: amount(o, 'closeFee', w), payerPubkey: hex(o, 'payerPubkey', w, 33), payerScript: hex(o, 'payerScript', w) };
    case 'accept':
      return { t, id: id(), payeePubkey: hex(o, 'payeePubkey', w, 33), payeeScript: hex(o, 'payeeScript', w), confirmations: int(o, 'confirmations', w, 0, 100) };
    case 'funded':
      return { t, id: id(), tx: hex(o, 'tx', w), vout: int(o, 'vout', w, 0, 10_000) };
    case 'hello':
    case 'close':
      return { t, id: id() };
    case 'state':
      return { t, id: id(), seq: int(o, 'seq', w), cumulative: amount(o, 'cumulative', w), sig: o.sig === null ? null : hex(o, 'sig', w, 64), confirmations: int(o, 'confirmations', w), status: str(o, 'status', w) };
    case 'known?':
    case 'known':
      return { t, id: id(), ids: ids(o, 'ids', w) };
    case 'pay': {
      const pid = o.pid === undefined || o.pid === null ? null : str(o, 'pid', w);
      if (pid !== null && !PID.test(pid)) throw new ShapeError(`${w}.pid must be 1 to 64 printable characters`);
      return { t, id: id(), seq: int(o, 'seq', w, 1), cumulative: amount(o, 'cumulative', w), sig: hex(o, 'sig', w, 64), pid };
    }
    case 'ack':
      return { t, id: id(), seq: int(o, 'seq', w) };
    case 'closed':
      return { t, id: id(), txid: hex(o, 'txid', w, 32) };
    case 'error':
      return { t, code: str(o, 'code', w).slice(0, 64), message: str(o, 'message', w).slice(0, 500) };
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

/** Expects a message of one type (in a request/response step); an error message from the peer becomes ours. */
export function expectType<T extends MessageType>(m: Message, t: T): Extract<Message, { t: T }> {
  if (m.t === t) return m as Extract<Message, { t: T }>;
  if (m.t === 'error') throw new SwarmpayError('CHANNEL_REFUSED', `the peer refused: ${m.code}: ${m.message}`, { details: { peerCode: m.code } });
  throw new SwarmpayError('PEER_PROTOCOL', `the peer sent "${m.t}" where "${t}" was expected`, { hint: 'nothing was changed' });
}
