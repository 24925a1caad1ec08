/**
 * The protocols on the peer link (channel, escrow) speak versioned JSON messages: each
 * frame one object with its version `v` and type `t`. This is the part they share: the
 * envelope read and checked before a protocol's own field-by-field parser sees the body,
 * and the next message of a request/response step.
 */
import { SwarmpayError } from '../errors.js';
import { ShapeError, asObj, type Obj } from '../util/shape.js';

/** Parses one frame as a message of `protocol` version `version`; anything malformed is PEER_PROTOCOL. */
export function parseVersioned<T>(bytes: Uint8Array, protocol: string, version: number, parseBody: (o: Obj) => T): T {
  try {
    const o = asObj(JSON.parse(Buffer.from(bytes).toString('utf8')), 'message');
    if (o.v !== version) {
      const theirs = typeof o.v === 'number' && Number.isSafeInteger(o.v) ? `version ${o.v}` : 'no version swarmpay knows';
      throw new SwarmpayError('PEER_PROTOCOL', `the peer speaks ${protocol} protocol ${theirs}; this swarmpay speaks version ${version}`, {
        hint: 'both sides must run a swarmpay of the same protocol version: upgrade the older one; nothing was changed',
        details: { ours: version, theirs: typeof o.v === 'number' ? o.v : null },
      });
    }
    return parseBody(o);
  } catch (e) {
    if (e instanceof ShapeError || e instanceof SyntaxError) {
      throw new SwarmpayError('PEER_PROTOCOL', `the peer sent a malformed ${protocol} message: ${e.message}`, { hint: 'the peer is not a compatible swarmpay, or not well; nothing was changed' });
    }
    throw e;
  }
}

/** One message as a frame; bigints (amounts) travel as decimal strings. */
export function encodeVersioned(version: number, m: object): Buffer {
  return Buffer.from(JSON.stringify({ v: version, ...m }, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v)), 'utf8');
}

/** The next frame of a request/response step, or PEER_UNREACHABLE if the peer hung up. */
export async function nextFrame(it: AsyncIterator<Buffer>, hint: string): Promise<Buffer> {
  const r = await it.next();
  if (r.done) throw new SwarmpayError('PEER_UNREACHABLE', 'the peer closed the connection', { hint });
  return r.value;
}
