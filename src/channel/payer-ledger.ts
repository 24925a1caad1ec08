/**
 * The payer's own durable record of a channel's payments, so that what it pays never
 * rests on the payee's word: the highest state it may have signed, the highest the payee
 * acknowledged (or proved it holds), and which batch ids are paid.
 *
 * - Before it signs a stretch of payments the payer records, with one fsync, the highest
 *   state the stretch reaches and the state at which each batch id is first covered. After
 *   a crash it therefore counts every state it may have signed as possibly spent.
 * - A batch id is paid once the payee holds a state, signed by this payer, that covers it:
 *   when the payee acknowledges it, or when at the next connection the payee shows (with
 *   the payer's signature) a state at or above it. Ids the payee cannot show are no longer
 *   pending: a later run pays them again, from the state the payee showed, which moves no
 *   more money than once (amounts are cumulative: a state covers all before it).
 * - Paid ids stay paid whatever the payee says later, so a batch run again skips them.
 *
 * One journal per channel (`channels/payer-<id>.journal`, sealed with a keystore subkey,
 * locked while a payer session holds it), rewritten small when it grows.
 */
import path from 'node:path';
import type { ContractStore } from '../keystore/keystore.js';
import type { Journal } from '../keystore/journal.js';
import type { Json } from '../util/canonical-json.js';
import { SwarmpayError } from '../errors.js';
import { ShapeError, asObj, int, str, type Obj } from '../util/shape.js';

export interface StatePoint {
  seq: number;
  cumulative: bigint;
}

export interface PayerLedger {
  /** The highest state this payer may have signed: possibly spent, acknowledged or not. */
  signed: StatePoint;
  /** The highest state the payee acknowledged, or showed with this payer's signature. */
  acked: StatePoint;
  /** Batch ids paid. */
  paid: Set<string>;
  /** Batch ids in states signed but not yet shown held by the payee: id → the cumulative amount that first covers it. */
  pending: Map<string, bigint>;
}

type Entry =
  | { t: 'reserve'; seq: number; c: string; pids: [string, string][] }
  | { t: 'settle'; seq: number; c: string; rebase: boolean }
  | { t: 'paid'; pids: string[] };

const ZERO: StatePoint = { seq: 0, cumulative: 0n };
/** Past this, the journal is rewritten as the ledger it means when next opened. */
const COMPACT_BYTES = 16 * 1024 * 1024;
/**
 * Past this many records more than the ledger compacts to, the journal is rewritten too when
 * next opened. It is read whole at every open, and a script that pays once per `channel pay`
 * adds a few records a run: without this each run read the records of every run before it (55
 * runs' took 20 ms, cold in a new process), and 16 MiB is some forty thousand runs.
 */
const COMPACT_SLACK_RECORDS = 64;
const IDS_PER_RECORD = 10_000;

export const payerJournalFile = (networkDir: string, id: string) => path.join(networkDir, 'channels', `payer-${id}.journal`);
export const payerJournalName = (id: string) => `channel-payer/${id}`;
/** One subkey seals every payer journal; each journal's name is sealed into its records. */
export const PAYER_JOURNAL_KEY = 'channel-payer';

function emptyLedger(): PayerLedger {
  return { signed: ZERO, acked: ZERO, paid: new Set(), pending: new Map() };
}

const higher = (a: StatePoint, b: StatePoint): StatePoint => (b.cumulative > a.cumulative || (b.cumulative === a.cumulative && b.seq > a.seq) ? b : a);

function apply(l: PayerLedger, e: Entry): void {
  switch (e.t) {
    case 'reserve':
      l.signed = higher(l.signed, { seq: e.seq, cumulative: BigInt(e.c) });
      for (const [pid, c] of e.pids) l.pending.set(pid, BigInt(c));
      return;
    case 'settle': {
      const at: StatePoint = { seq: e.seq, cumulative: BigInt(e.c) };
      l.acked = higher(l.acked, at);
      // The payee holds a state this payer signed at this amount: it may have signed it.
      l.signed = higher(l.signed, at);
      for (const [pid, c] of l.pending) {
        if (c <= at.cumulative) {
          l.paid.add(pid);
          l.pending.delete(pid);
        } else if (e.rebase) {
          l.pending.delete(pid);
        }
      }
      return;
    }
    case 'paid':
      for (const pid of e.pids) l.paid.add(pid);
  }
}

const AMOUNT = /^(0|[1-9][0-9]{0,15})$/;

function amount(o: Obj, k: string, w: string): string {
  const v = str(o, k, w);
  if (!AMOUNT.test(v)) throw new ShapeError(`${w}.${k} must be an amount in sats`);
  return v;
}

function strings(o: Obj, k: string, w: string): string[] {
  const v = o[k];
  if (!Array.isArray(v) || !v.every((x): x is string => typeof x === 'string')) throw new ShapeError(`${w}.${k} must be a list of payment ids`);
  return v;
}

function reserved(o: Obj, w: string): [string, string][] {
  const v = o.pids;
  if (!Array.isArray(v)) throw new ShapeError(`${w}.pids must be a list`);
  return v.map((p: unknown, i): [string, string] => {
    if (!Array.isArray(p) || p.length !== 2 || typeof p[0] !== 'string' || typeof p[1] !== 'string' || !AMOUNT.test(p[1])) throw new ShapeError(`${w}.pids[${i}] must be [payment id, amount]`);
    return [p[0], p[1]];
  });
}

/** One ledger entry, checked field by field: authentic, yet a bad shape is a bug or a foreign writer (KEYSTORE_CORRUPT). */
function decodeEntry(v: Json): Entry {
  const w = 'payer ledger entry';
  try {
    const o = asObj(v, w);
    const t = str(o, 't', w);
    switch (t) {
      case 'reserve':
        return { t, seq: int(o, 'seq', w), c: amount(o, 'c', w), pids: reserved(o, w) };
      case 'settle': {
        const rebase = o.rebase;
        if (typeof rebase !== 'boolean') throw new ShapeError(`${w}.rebase must be true or false`);
        return { t, seq: int(o, 'seq', w), c: amount(o, 'c', w), rebase };
      }
      case 'paid':
        return { t, pids: strings(o, 'pids', w) };
      default:
        throw new ShapeError(`${w}.t "${t.slice(0, 16)}" is not reserve, settle or paid`);
    }
  } catch (e) {
    if (!(e instanceof ShapeError)) throw e;
    throw new SwarmpayError('KEYSTORE_CORRUPT', `a channel's payer ledger holds a bad record: ${e.message}`, { hint: '`swarmpay channel recover` rewrites it from what still verifies' });
  }
}

function replay(records: Json[]): PayerLedger {
  const l = emptyLedger();
  for (const r of records) apply(l, decodeEntry(r));
  return l;
}

/** The ledger as it stands, read without locking (for `channel show`). */
export function readPayerLedger(session: ContractStore, networkDir: string, id: string): PayerLedger {
  return replay(session.readJournal(payerJournalFile(networkDir, id), payerJournalName(id), PAYER_JOURNAL_KEY));
}

/** The ledger of one channel, open for a payer session to write to (one at a time: the file is locked). */
export class PayerJournal {
  private constructor(
    private readonly session: ContractStore,
    private readonly journal: Journal,
    private readonly name: string,
    readonly ledger: PayerLedger,
  ) {}

  /** `compactAt`: the size past which it is rewritten on open (COMPACT_BYTES unless set). */
  static open(session: ContractStore, networkDir: string, id: string, compactAt = COMPACT_BYTES): PayerJournal {
    const { journal, records } = session.openJournal(payerJournalFile(networkDir, id), payerJournalName(id), PAYER_JOURNAL_KEY);
    const j = new PayerJournal(session, journal, payerJournalName(id), replay(records));
    const l = j.ledger;
    const compactedRecords = 2 + Math.ceil(l.paid.size / IDS_PER_RECORD) + Math.ceil(l.pending.size / IDS_PER_RECORD);
    if (journal.bytes > compactAt || records.length > compactedRecords + COMPACT_SLACK_RECORDS) j.compact();
    return j;
  }

  /** Records, durably, that states up to `upto` are about to be signed, covering these ids at these amounts. */
  reserve(upto: StatePoint, pids: [string, bigint][]): void {
    const entries: Entry[] = [];
    for (let i = 0; i === 0 || i < pids.length; i += IDS_PER_RECORD) {
      entries.push({ t: 'reserve', seq: upto.seq, c: upto.cumulative.toString(), pids: pids.slice(i, i + IDS_PER_RECORD).map(([p, c]) => [p, c.toString()]) });
    }
    this.write(entries);
  }

  /**
   * The payee holds `at` (acknowledged, or shown with our signature): the ids it covers are
   * paid. With `rebase` (at the start of a session) nothing above it is held: pending ids
   * above it are no longer pending.
   */
  settle(at: StatePoint, rebase: boolean): void {
    if (!rebase && at.cumulative <= this.ledger.acked.cumulative && at.seq <= this.ledger.acked.seq) return;
    this.write([{ t: 'settle', seq: at.seq, c: at.cumulative.toString(), rebase }]);
  }

  /** Records where the journal stands in the keystore, and lets go of it. */
  async close(): Promise<void> {
    await this.session.closeJournal(this.name);
  }

  private write(entries: Entry[]): void {
    this.journal.append(entries);
    for (const e of entries) apply(this.ledger, e);
  }

  /** Rewrites the journal as the ledger it means: the same ledger from far fewer records. */
  private compact(): void {
    const l = this.ledger;
    const entries: Entry[] = [{ t: 'reserve', seq: l.signed.seq, c: l.signed.cumulative.toString(), pids: [] }, { t: 'settle', seq: l.acked.seq, c: l.acked.cumulative.toString(), rebase: false }];
    const paid = [...l.paid];
    for (let i = 0; i < paid.length; i += IDS_PER_RECORD) entries.push({ t: 'paid', pids: paid.slice(i, i + IDS_PER_RECORD) });
    const pending = [...l.pending].map(([p, c]): [string, string] => [p, c.toString()]);
    for (let i = 0; i < pending.length; i += IDS_PER_RECORD) entries.push({ t: 'reserve', seq: l.signed.seq, c: l.signed.cumulative.toString(), pids: pending.slice(i, i + IDS_PER_RECORD) });
    // A failed rewrite leaves the journal as it was: it only goes on being large.
    try {
      this.journal.rewrite(entries);
    } catch {
      /* the old journal still holds the same ledger */
    }
  }
}
