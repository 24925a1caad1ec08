/**
 * A batch of payments: JSON lines `{"id": "...", "channel": "...", "sats": N}`, each id
 * paid at most once however often the batch runs. Read whole and checked before anything
 * is paid, then grouped by channel.
 */
import { createInterface } from 'node:readline';
import { SwarmpayError } from '../errors.js';
import { parseSats } from '../bitcoin/amount.js';

export interface PayItem {
  sats: bigint;
  /** A batch id: paid at most once, however often the batch is run. */
  pid: string | null;
}

/** The payments to one channel, in order. */
export interface PayGroup {
  channel: string;
  items: PayItem[];
}

export interface BatchLine {
  pid: string;
  channel: string;
  sats: bigint;
}

/** Where a batch comes from: its lines, or a stream of them (a file, stdin). */
export type BatchSource = Iterable<string> | AsyncIterable<string> | NodeJS.ReadableStream;

/** Batch ids: short printable strings, as the payments frame carries them. */
const PID = /^[\x21-\x7e]{1,64}$/;

function lines(source: BatchSource): Iterable<string> | AsyncIterable<string> {
  // A stream of bytes is read as lines; lines given as strings are taken as they are.
  return 'pipe' in source ? createInterface({ input: source, crlfDelay: Infinity }) : source;
}

/** Reads every line of a batch (`name`: the file, for errors); the first bad one refuses it all (INVALID_FILE), so nothing is paid. */
export async function readBatch(source: BatchSource, name = 'the batch'): Promise<BatchLine[]> {
  const out: BatchLine[] = [];
  let n = 0;
  try {
    for await (const line of lines(source)) {
      n++;
      if (line.trim() === '') continue;
      let o: unknown;
      try {
        o = JSON.parse(line);
      } catch {
        throw new SwarmpayError('INVALID_FILE', `batch line ${n} is not JSON`, { hint: 'each line is {"id": "...", "channel": "...", "sats": N}; nothing was paid' });
      }
      const { id, channel, sats } = typeof o === 'object' && o !== null ? (o as { id?: unknown; channel?: unknown; sats?: unknown }) : {};
      if (typeof id !== 'string' || !PID.test(id) || typeof channel !== 'string' || (typeof sats !== 'number' && typeof sats !== 'string')) {
        throw new SwarmpayError('INVALID_FILE', `batch line ${n} needs "id" (1-64 printable characters), "channel" and "sats"`, { hint: 'nothing was paid' });
      }
      out.push({ pid: id, channel, sats: parseSats(String(sats), `batch line ${n} sats`) });
    }
  } catch (e) {
    if (e instanceof SwarmpayError) throw e;
    throw new SwarmpayError('INVALID_FILE', `cannot read ${name}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { hint: 'check the path; nothing was paid' });
  }
  return out;
}

/** Batch lines grouped by channel (in the order channels first appear); ids must be unique. */
export function planBatch(batch: BatchLine[]): PayGroup[] {
  const groups = new Map<string, PayGroup>();
  const ids = new Set<string>();
  for (const l of batch) {
    if (ids.has(l.pid)) throw new SwarmpayError('INVALID_FILE', `batch id "${l.pid}" appears twice`, { hint: 'ids make a batch safe to run again: each must be unique; nothing was paid' });
    ids.add(l.pid);
    const g = groups.get(l.channel) ?? { channel: l.channel, items: [] };
    g.items.push({ sats: l.sats, pid: l.pid });
    groups.set(l.channel, g);
  }
  return [...groups.values()];
}

/** `count` payments of `sats` to one channel. */
export function repeatPayment(channel: string, sats: bigint, count: number): PayGroup[] {
  // One item, `count` times: ten million payments hold ten million references, not objects.
  return [{ channel, items: new Array<PayItem>(count).fill({ sats, pid: null }) }];
}
