/**
 * The escrow protocol's messages (version 2), JSON over the peer link: the buyer asks
 * for an offer with a fresh random nonce, the seller sends it (for an attested offer with
 * a fresh TPM quote over H(offer digest || that nonce), or null if it has no TPM at hand)
 * and its ciphertext in chunks that fit a frame, the buyer sends its acceptance, the
 * seller takes it or refuses. Parsed field by field before anything acts on them; the
 * offer, quote and acceptance inside are checked by their own parsers.
 */
import { SwarmpayError } from '../errors.js';
import { ShapeError, asObj, hex, int, str, type Obj } from '../util/shape.js';
import { encodeVersioned, parseVersioned } from '../peer/json-messages.js';
import { Conversation, type Protocol } from '../peer/conversation.js';
import type { PeerLink } from '../peer/link.js';
import { MAX_ITEM_BYTES } from './offer.js';

/** 2: `get` carries the buyer's nonce, `offer` a fresh quote over it. */
const ESCROW_PROTOCOL_VERSION = 2;
/** The buyer's nonce in `get`: fresh random bytes, so that no quote made before can answer it. */
export const BUYER_NONCE_BYTES = 32;
/** Raw bytes per chunk: base64 and JSON around it stay well inside the link's 64 KiB frames. */
export const CHUNK_BYTES = 32 * 1024;
const MAX_CHUNKS = Math.ceil((MAX_ITEM_BYTES + 64) / CHUNK_BYTES);

export type EscrowMessage =
  | { t: 'get'; id: string | null; nonce: Buffer }
  /** `quote`: an attestation document (shape-checked as an object here, verified by the buyer), or null. */
  | { t: 'offer'; offer: unknown; chunks: number; quote: unknown }
  | { t: 'chunk'; i: number; data: Buffer }
  | { t: 'accepted'; acceptance: unknown }
  | { t: 'taken'; id: string }
  | { t: 'error'; code: string; message: string };

function parseBody(o: Obj): EscrowMessage {
  const t = str(o, 't', 'message');
  const w = `message ${t}`;
  switch (t) {
    case 'get':
      return { t, id: o.id === null ? null : hex(o, 'id', w, 8), nonce: Buffer.from(hex(o, 'nonce', w, BUYER_NONCE_BYTES), 'hex') };
    case 'offer':
      return { t, offer: asObj(o.offer, `${w}.offer`), chunks: int(o, 'chunks', w, 1, MAX_CHUNKS), quote: o.quote === null ? null : asObj(o.quote, `${w}.quote`) };
    case 'chunk': {
      const data = str(o, 'data', w);
      if (!/^[A-Za-z0-9+/]*={0,2}$/.test(data) || data.length > Math.ceil(CHUNK_BYTES / 3) * 4) throw new ShapeError(`${w}.data must be base64 of at most ${CHUNK_BYTES} bytes`);
      return { t, i: int(o, 'i', w, 0, MAX_CHUNKS - 1), data: Buffer.from(data, 'base64') };
    }
    case 'accepted':
      return { t, acceptance: asObj(o.acceptance, `${w}.acceptance`) };
    case 'taken':
      return { t, id: hex(o, 'id', w, 8) };
    case 'error':
      return { t, code: str(o, 'code', w).slice(0, 64), message: str(o, 'message', w).slice(0, 500) };
    default:
      throw new ShapeError(`unknown message type "${t.slice(0, 32)}"`);
  }
}

export function parseEscrowMessage(bytes: Uint8Array): EscrowMessage {
  return parseVersioned(bytes, 'escrow', ESCROW_PROTOCOL_VERSION, parseBody);
}

export function encodeEscrowMessage(m: EscrowMessage): Buffer {
  if (m.t === 'chunk') return encodeVersioned(ESCROW_PROTOCOL_VERSION, { ...m, data: m.data.toString('base64') });
  if (m.t === 'get') return encodeVersioned(ESCROW_PROTOCOL_VERSION, { ...m, nonce: m.nonce.toString('hex') });
  return encodeVersioned(ESCROW_PROTOCOL_VERSION, m);
}

/** Only the seller refuses (the buyer just hangs up): its `error` is ours, naming its code. */
export const escrowProtocol: Protocol<EscrowMessage> = {
  name: 'escrow',
  parse: parseEscrowMessage,
  encode: encodeEscrowMessage,
  refusal: (m) => (m.t === 'error' ? new SwarmpayError('ESCROW_STATE', `the seller refused: ${m.code}: ${m.message}`, { details: { peerCode: m.code } }) : null),
};

/**
 * The escrow side of a link. The seller waits for a buyer's next step as long as the link
 * lets it (timeoutMs 0): a buyer asks its user before it funds, which may take a while.
 */
export function escrowConversation(link: PeerLink, timeoutMs?: number): Conversation<EscrowMessage> {
  return new Conversation(link, escrowProtocol, { hint: "see the other side's log", ...(timeoutMs === undefined ? {} : { timeoutMs }) });
}
