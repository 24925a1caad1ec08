/**
 * One generic marshal-send-unmarshal routine for every TPM command (Part 1, 18): the
 * command's handles, its authorization area built from sessions, its parameters; the
 * response's code, handles and parameters. Commands themselves are typed descriptions.
 */
import { TPM_RH, TPM_ST, TPMA_SESSION } from './constants.js';
import { MarshalError, Reader, Writer } from './marshal.js';
import { TpmError } from './rc.js';
import type { Transport } from './transport.js';
import { SwarmpayError } from '../errors.js';

/** An authorization for one handle: a password (TPM_RS_PW) or a policy session. */
export interface Session {
  handle: number;
  attributes: number;
  /** The password for TPM_RS_PW; empty for a policy session without PolicyAuthValue/PolicyPassword. */
  hmac: Uint8Array;
}

export function passwordSession(password: Uint8Array = new Uint8Array(0)): Session {
  return { handle: TPM_RH.RS_PW, attributes: TPMA_SESSION.continueSession, hmac: password };
}

export function policySession(handle: number): Session {
  return { handle, attributes: TPMA_SESSION.continueSession, hmac: new Uint8Array(0) };
}

export interface Command<R> {
  /** The spec's name, for messages. */
  name: string;
  code: number;
  handles: number[];
  /** One session per handle that needs authorization, in handle order. */
  sessions?: Session[];
  params?: (w: Writer) => void;
  /** How many handles the response carries before its parameters. */
  responseHandles?: number;
  parse?: (r: Reader, handles: number[]) => R;
}

/** Part 1, 18.2: tag, size, code, handles, authorization area, parameters. */
function marshalCommand<R>(cmd: Command<R>): Buffer {
  const sessions = cmd.sessions ?? [];
  const body = new Writer();
  body.u32(cmd.code);
  for (const h of cmd.handles) body.u32(h);
  if (sessions.length > 0) {
    body.sized32((w) => {
      for (const s of sessions) w.u32(s.handle).tpm2b(new Uint8Array(0)).u8(s.attributes).tpm2b(s.hmac);
    });
  }
  try {
    cmd.params?.(body);
  } catch (e) {
    // A value the caller gave cannot be put on the wire (a PCR out of range, an oversize buffer).
    if (e instanceof MarshalError) throw new SwarmpayError('USAGE', `cannot send ${cmd.name}: ${e.message}`);
    throw e;
  }
  const bytes = body.done();
  return new Writer().u16(sessions.length > 0 ? TPM_ST.SESSIONS : TPM_ST.NO_SESSIONS).u32(bytes.length + 6).bytes(bytes).done();
}

export async function execute<R = void>(t: Transport, cmd: Command<R>): Promise<R> {
  const resp = await t.send(marshalCommand(cmd));
  try {
    const r = new Reader(resp);
    const tag = r.u16();
    if (tag !== TPM_ST.NO_SESSIONS && tag !== TPM_ST.SESSIONS) throw new MarshalError(`response tag 0x${tag.toString(16)} is not a TPM 2.0 tag`);
    const size = r.u32();
    if (size !== resp.length) throw new MarshalError(`response size field ${size} but ${resp.length} bytes`);
    const rc = r.u32();
    if (rc !== 0) throw new TpmError(rc, cmd.name);
    const handles = Array.from({ length: cmd.responseHandles ?? 0 }, () => r.u32());
    // With sessions, a size precedes the parameters and session responses follow them;
    // password and policy sessions without HMACs leave nothing there to check.
    const params = tag === TPM_ST.SESSIONS ? new Reader(r.bytes(r.u32())) : r;
    const result = cmd.parse ? cmd.parse(params, handles) : (undefined as R);
    params.end();
    return result;
  } catch (e) {
    if (e instanceof MarshalError) {
      throw new SwarmpayError('TPM_PROTOCOL', `the TPM's answer to ${cmd.name} is malformed: ${e.message}`, { hint: 'is this really a TPM 2.0? check --tpm' });
    }
    throw e;
  }
}
