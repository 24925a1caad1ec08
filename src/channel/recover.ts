/**
 * `channel recover`: salvage of damaged (or rolled-back) channel journals. Each journal
 * that no longer opens is read record by record (Journal.salvage), rewritten as a new
 * generation of what can still be trusted, and the damaged file is kept beside it.
 *
 * - The payee's payment journal keeps, per channel, the highest state the payer's signature
 *   still proves, and the batch ids of every record that still authenticates. A record whose
 *   authentication fails may still hold an intact state: a signed state proves itself, so
 *   its amount is kept if its signature verifies against the channel's terms (its ids and
 *   its sequence number are not).
 * - A payer's ledger keeps only the records that authenticate (nothing in it is signed by
 *   anyone else); what was lost is reported, and the next session settles on the state the
 *   payee shows.
 */
import { existsSync } from 'node:fs';
import { SwarmpayError } from '../errors.js';
import type { Salvaged } from '../keystore/journal.js';
import type { ContractStore } from '../keystore/keystore.js';
import { StateHasher, verifyState } from '../bitcoin/channel.js';
import type { Json } from '../util/canonical-json.js';
import { PAYER_JOURNAL_KEY, payerJournalFile, payerJournalName } from './payer-ledger.js';
import { PAYMENT_JOURNAL, decodeJournalRecord, findChannel, listChannels, outpointOf, paymentJournalFile, stateRecords, termsOf, type JournalRecord, type PaymentState } from './store.js';

interface JournalRecovery {
  file: string;
  /** `whole`: it opens as it is, nothing was changed. */
  status: 'whole' | 'recovered';
  /** Why it did not open (damage, or older than the keystore recorded); null when whole. */
  problem: string | null;
  damage: { offset: number; bytes: number; what: string }[];
  /** Records that authenticate, and records that do not (of which only signed states are kept). */
  records: { authentic: number; unauthenticated: number };
  /** Where the file as it was is kept; null when whole. */
  keptAs: string | null;
}

/** What a payee can close a channel on after a recovery. */
interface RecoveredState {
  id: string;
  seq: number;
  cumulative: bigint;
  /** `journal`: its record authenticates; `signature`: only the payer's signature proves it. */
  proof: 'journal' | 'signature';
}

export interface Recovery {
  journals: JournalRecovery[];
  states: RecoveredState[];
}

/** A payment record as it should be, or null (bytes decrypted without authentication may be anything). */
function paymentRecord(v: Json): JournalRecord | null {
  try {
    return decodeJournalRecord(v);
  } catch {
    return null;
  }
}

/** Whether the payer signed this state of this channel: a state this wallet cannot check (no such channel) is not kept. */
function signedByPayer(session: ContractStore, id: string, s: PaymentState): boolean {
  const rec = findChannel(session, id);
  if (rec === null || rec.role !== 'payee' || s.sig === null) return false;
  const t = termsOf(rec);
  return s.cumulative <= t.capacity && verifyState(new StateHasher(t, outpointOf(rec)).sighash(s.cumulative), t.payerPubkey, Buffer.from(s.sig, 'hex'));
}

/**
 * Per channel, the highest state whose signature verifies, and the ids of the authentic
 * records it covers. The signature covers the amount, not the sequence number, so states
 * are ranked by amount; a state from a record that fails authentication keeps its amount
 * (its signature proves it) but not its sequence number, which it gets as one past the
 * highest authentic one: a damaged sequence number must not pass for a newer state.
 */
function choosePayments(session: ContractStore, found: Salvaged[], states: RecoveredState[]): Json[] {
  const byChannel = new Map<string, { state: PaymentState; ids: string[]; authentic: boolean }[]>();
  for (const f of found) {
    if (f.kind !== 'record') continue;
    const r = paymentRecord(f.value);
    if (r === null) continue;
    const cands = byChannel.get(r.ch) ?? [];
    byChannel.set(r.ch, cands);
    cands.push({ state: { seq: r.seq, cumulative: BigInt(r.cumulative), sig: r.sig }, ids: f.authentic ? r.ids : [], authentic: f.authentic });
  }
  const records: Json[] = [];
  for (const [id, cands] of byChannel) {
    // Highest amount first (authentic first at one amount); signatures checked only until one holds.
    const best = cands.sort((a, b) => (a.state.cumulative === b.state.cumulative ? Number(b.authentic) - Number(a.authentic) : a.state.cumulative > b.state.cumulative ? -1 : 1)).find((k) => signedByPayer(session, id, k.state));
    if (best === undefined) continue;
    const authentic = cands.filter((k) => k.authentic);
    const seq = best.authentic ? best.state.seq : authentic.reduce((m, k) => Math.max(m, k.state.seq), 0) + 1;
    const state = { ...best.state, seq };
    const ids = new Set(authentic.filter((k) => k.state.cumulative <= state.cumulative).flatMap((k) => k.ids));
    records.push(...stateRecords(id, state, ids));
    states.push({ id, seq, cumulative: state.cumulative, proof: best.authentic ? 'journal' : 'signature' });
  }
  return records;
}

async function recoverOne(session: ContractStore, file: string, name: string, keyName: string, choose: (found: Salvaged[]) => Json[]): Promise<JournalRecovery> {
  let problem: SwarmpayError;
  try {
    session.readJournal(file, name, keyName);
    return { file, status: 'whole', problem: null, damage: [], records: { authentic: 0, unauthenticated: 0 }, keptAs: null };
  } catch (e) {
    if (!(e instanceof SwarmpayError) || (e.code !== 'KEYSTORE_CORRUPT' && e.code !== 'ROLLBACK_DETECTED')) throw e;
    problem = e;
  }
  const keptAs = `${file}.damaged-${new Date().toISOString().replace(/[:.]/g, '-')}`;
  const found = await session.recoverJournal(file, name, keyName, choose, keptAs);
  const records = found.flatMap((f) => (f.kind === 'record' ? [f] : []));
  return {
    file,
    status: 'recovered',
    problem: problem.message,
    damage: found.flatMap((f) => (f.kind === 'damage' ? [{ offset: f.offset, bytes: f.bytes, what: f.what }] : [])),
    records: { authentic: records.filter((r) => r.authentic).length, unauthenticated: records.filter((r) => !r.authentic).length },
    keptAs: existsSync(keptAs) ? keptAs : null,
  };
}

/**
 * Checks every channel journal of this datadir and recovers those that do not open. Refused
 * (the journal is locked) while `channel serve` or a payer session holds one.
 */
export async function recoverJournals(session: ContractStore, networkDir: string): Promise<Recovery> {
  const states: RecoveredState[] = [];
  const journals: JournalRecovery[] = [];
  const payments = paymentJournalFile(networkDir);
  if (existsSync(payments) || session.journalHead(PAYMENT_JOURNAL) !== null) {
    journals.push(await recoverOne(session, payments, PAYMENT_JOURNAL, PAYMENT_JOURNAL, (found) => choosePayments(session, found, states)));
  }
  for (const rec of listChannels(session)) {
    if (rec.role !== 'payer') continue;
    const file = payerJournalFile(networkDir, rec.id);
    const name = payerJournalName(rec.id);
    if (!existsSync(file) && session.journalHead(name) === null) continue;
    journals.push(await recoverOne(session, file, name, PAYER_JOURNAL_KEY, (found) => found.flatMap((f) => (f.kind === 'record' && f.authentic ? [f.value] : []))));
  }
  return { journals, states };
}
