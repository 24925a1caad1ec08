/**
 * Where channels live: their terms and status in the keystore (written at checkpoints:
 * open and close, which advance the TPM counter), and the payee's stream of payments in
 * one journal beside it for all its channels (one group commit per batch of payments
 * across every channel, no TPM round trip).
 */
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { SwarmpayError } from '../errors.js';
import type { Json } from '../util/canonical-json.js';
import type { ContractStore } from '../keystore/keystore.js';
import type { Journal } from '../keystore/journal.js';
import { decodeRecord, type ChannelRecord } from './record.js';
import { ShapeError, asObj, hex, int, str } from '../util/shape.js';

export * from './record.js';

type Secret = { [k: string]: Json };
type Rows = { [id: string]: Json };

/** The keystore's part channels own: their records by id (each decoded when read), and the next key index. */
function rows(secret: Secret): Rows {
  const t = secret.channels;
  if (t === undefined) return {};
  if (typeof t !== 'object' || t === null || Array.isArray(t)) throw new SwarmpayError('KEYSTORE_CORRUPT', "the keystore's channel table is not an object", { hint: 'this swarmpay cannot read it; nothing was changed' });
  return t;
}

function nextKeyOf(secret: Secret): number {
  const n = secret.nextChannelKey;
  if (n === undefined) return 0;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) throw new SwarmpayError('KEYSTORE_CORRUPT', "the keystore's next channel key index is not a count", { hint: 'this swarmpay cannot read it; nothing was changed' });
  return n;
}

/** A fresh channel id: 8 random bytes, hex. */
export function newChannelId(): string {
  return randomBytes(8).toString('hex');
}

export function listChannels(session: ContractStore): ChannelRecord[] {
  return Object.entries(rows(session.secret)).flatMap(([id, v]) => decodeRecord(v, id) ?? []);
}

export function findChannel(session: ContractStore, id: string): ChannelRecord | null {
  const v = rows(session.secret)[id];
  return v === undefined ? null : decodeRecord(v, id);
}

export function getChannel(session: ContractStore, id: string): ChannelRecord {
  const rec = findChannel(session, id);
  if (!rec) throw new SwarmpayError('CHANNEL_NOT_FOUND', `no channel ${id} in this datadir`, { hint: 'see `swarmpay channel list`' });
  return rec;
}

/** Reserves the next channel key index (kept with the record written in the same update). */
export function nextKeyIndex(session: ContractStore): number {
  return nextKeyOf(session.secret);
}

/**
 * Key indexes for channels the payee agrees to before anyone funds them. They are handed
 * out from a block reserved in the keystore, one write per KEY_BLOCK opens, so that
 * strangers' opens cost the payee no keystore write each; a restart skips what is left of
 * the block, and no index is ever handed out twice.
 */
export class KeyIndexes {
  private next = 0;
  private end = 0;

  constructor(private readonly session: ContractStore) {}

  async take(): Promise<number> {
    if (this.next >= this.end) {
      let start = 0;
      await this.session.update((secret) => {
        start = nextKeyOf(secret);
        secret.nextChannelKey = start + KEY_BLOCK;
      });
      this.next = start;
      this.end = start + KEY_BLOCK;
    }
    return this.next++;
  }
}

const KEY_BLOCK = 1000;

/** Writes channel records, in one keystore update; `checkpoint` advances the TPM counter (open and close). */
export async function saveChannels(session: ContractStore, recs: ChannelRecord[], checkpoint: boolean): Promise<void> {
  await changeChannels(session, (t) => recs.forEach((rec) => t.put(rec)), checkpoint);
}

/** Thrown inside an update to leave the keystore as it is (nothing written, no checkpoint). */
const UNCHANGED = Symbol('unchanged');

/**
 * Stores a new channel unless its id is stored already, in one update (two connections
 * racing to store one id cannot both win); returns whether it was stored. The session then
 * holds the keystore as it is, either way.
 */
export async function insertChannel(session: ContractStore, rec: ChannelRecord, checkpoint: boolean): Promise<boolean> {
  let stored = false;
  await changeChannels(session, (t) => {
    if (t.get(rec.id) !== undefined) throw UNCHANGED;
    t.put(rec);
    stored = true;
  }, checkpoint);
  return stored;
}

/**
 * Moves a channel to a new state, from the newest stored record (another process may have
 * moved it meanwhile); returns what is stored. A transition that no longer applies (the
 * record moved elsewhere first) returns null, and nothing is written.
 */
export async function updateChannel(session: ContractStore, id: string, next: (rec: ChannelRecord) => ChannelRecord | null, checkpoint: boolean): Promise<ChannelRecord> {
  await changeChannels(session, (t) => {
    const v = t.get(id);
    const rec = v === undefined ? null : decodeRecord(v, id);
    if (rec === null) throw new SwarmpayError('CHANNEL_NOT_FOUND', `no channel ${id} in this datadir`);
    const moved = next(rec);
    if (moved === null) throw UNCHANGED;
    t.put(moved);
  }, checkpoint);
  return getChannel(session, id);
}

/** The channel table inside one keystore update. */
class Table {
  /** The stored table is frozen (the keystore is copy-on-write): copied once per write, not once per channel. */
  private copy: Rows | null = null;

  constructor(private readonly secret: Secret) {}

  get(id: string): Json | undefined {
    return rows(this.secret)[id];
  }

  put(rec: ChannelRecord): void {
    this.copy ??= { ...rows(this.secret) };
    this.copy[rec.id] = rec;
    this.secret.channels = this.copy;
    this.secret.nextChannelKey = Math.max(nextKeyOf(this.secret), rec.keyIndex + 1);
  }
}

/** One keystore update of the channel table; `mutate` throws UNCHANGED to write nothing. */
async function changeChannels(session: ContractStore, mutate: (t: Table) => void, checkpoint: boolean): Promise<void> {
  try {
    await session.update((secret) => mutate(new Table(secret)), { checkpoint });
  } catch (e) {
    if (e !== UNCHANGED) throw e;
  }
}

/** The payee's newest state of a channel: what a close would pay. */
export interface PaymentState {
  seq: number;
  cumulative: bigint;
  /** The payer's signature over the state, hex; null before the first payment. */
  sig: string | null;
}

export type JournalRecord = {
  /** The channel: one journal holds the payments of all a payee's channels, so one fsync covers them all. */
  ch: string;
  seq: number;
  cumulative: string;
  sig: string;
  ids: string[];
};

/** One record of the payment journal, checked field by field; a bad one throws ShapeError naming the field. */
export function decodeJournalRecord(v: unknown): JournalRecord {
  const w = 'payment record';
  const o = asObj(v, w);
  const cumulative = str(o, 'cumulative', w);
  if (!/^(0|[1-9][0-9]{0,15})$/.test(cumulative)) throw new ShapeError(`${w}.cumulative must be an amount in sats`);
  const ids = o.ids;
  if (!Array.isArray(ids) || !ids.every((x): x is string => typeof x === 'string')) throw new ShapeError(`${w}.ids must be a list of payment ids`);
  return { ch: hex(o, 'ch', w, 8), seq: int(o, 'seq', w), cumulative, sig: hex(o, 'sig', w, 64), ids };
}

/** One journal record: a channel's state after a commit, and the batch ids that commit paid. */
export function journalRecord(ch: string, state: PaymentState, ids: string[]): Json {
  return { ch, seq: state.seq, cumulative: state.cumulative.toString(), sig: state.sig, ids };
}

export interface ChannelPayments {
  state: PaymentState;
  ids: Set<string>;
}

/** An authentic record of a bad shape is a bug or a foreign writer: refused before it counts. */
function readRecord(v: Json): JournalRecord {
  try {
    return decodeJournalRecord(v);
  } catch (e) {
    if (!(e instanceof ShapeError)) throw e;
    throw new SwarmpayError('KEYSTORE_CORRUPT', `the payment journal holds a bad record: ${e.message}`, { hint: '`swarmpay channel recover` rewrites it from what still verifies' });
  }
}

function replay(records: Json[]): Map<string, ChannelPayments> {
  const out = new Map<string, ChannelPayments>();
  for (const v of records) {
    const r = readRecord(v);
    const c = out.get(r.ch) ?? { state: { seq: 0, cumulative: 0n, sig: null }, ids: new Set<string>() };
    c.state = { seq: r.seq, cumulative: BigInt(r.cumulative), sig: r.sig };
    for (const pid of r.ids) c.ids.add(pid);
    out.set(r.ch, c);
  }
  return out;
}

/** The payee's payment journal: its name (and its subkey's) and its file. */
export const PAYMENT_JOURNAL = 'channel-payments';
export const paymentJournalFile = (networkDir: string) => path.join(networkDir, 'channels', `${PAYMENT_JOURNAL}.journal`);

/** Batch ids per record when the journal is rewritten, so no record grows without bound. */
const IDS_PER_RECORD = 10_000;

/** A channel's state and every batch id it paid, as the records of a rewritten journal. */
export function stateRecords(ch: string, state: PaymentState, ids: Iterable<string>): Json[] {
  const all = [...ids];
  const out: Json[] = [];
  for (let i = 0; i === 0 || i < all.length; i += IDS_PER_RECORD) out.push(journalRecord(ch, state, all.slice(i, i + IDS_PER_RECORD)));
  return out;
}

/** Opens the payee's payment journal to append to, and replays it: per channel, the newest state and every batch id paid. */
export function openPaymentJournal(session: ContractStore, networkDir: string): { journal: Journal; channels: Map<string, ChannelPayments> } {
  const { journal, records } = session.openJournal(paymentJournalFile(networkDir), PAYMENT_JOURNAL);
  return { journal, channels: replay(records) };
}

/** Records where the payment journal stands in the keystore, and closes it. */
export async function closePaymentJournal(session: ContractStore): Promise<void> {
  await session.closeJournal(PAYMENT_JOURNAL);
}

/** The newest state of one channel, read without touching the file (a server may be appending). */
export function readPaymentState(session: ContractStore, networkDir: string, id: string): PaymentState {
  return replay(session.readJournal(paymentJournalFile(networkDir), PAYMENT_JOURNAL)).get(id)?.state ?? { seq: 0, cumulative: 0n, sig: null };
}
