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
import type { KeystoreSession } from '../keystore/keystore.js';
import { Journal } from '../keystore/journal.js';
import type { ChannelTerms, Outpoint } from '../bitcoin/channel.js';

export type Role = 'payer' | 'payee';
/** closing: the close is broadcast (the chain tells when it confirms); refunded: likewise the refund. */
export type Status = 'opening' | 'open' | 'closing' | 'refunded';
export type PeerAddress = { kind: 'tcp'; host: string; port: number } | { kind: 'cmd'; command: string };

export interface ChannelRecord {
  id: string;
  role: Role;
  terms: { payerPubkey: string; payeePubkey: string; expiry: number; capacity: string; closeFee: string; payeeScript: string; payerScript: string };
  /** Our key's index on the channel key chain. */
  keyIndex: number;
  funding: (Outpoint & { tx: string }) | null;
  confirmations: number;
  /** How the payer reaches the payee again, and the payee's pinned static key. */
  peer: PeerAddress | null;
  peerKey: string;
  status: Status;
  closeTxid: string | null;
  refundTxid: string | null;
  created: string;
}

interface ChannelsSecret {
  channels?: Record<string, ChannelRecord>;
  nextChannelKey?: number;
}

function table(secret: { [k: string]: Json }): ChannelsSecret {
  return secret as unknown as ChannelsSecret;
}

/** A fresh channel id: 8 random bytes, hex. */
export function newChannelId(): string {
  return randomBytes(8).toString('hex');
}

export function listChannels(session: KeystoreSession): ChannelRecord[] {
  return Object.values(table(session.secret).channels ?? {});
}

export function getChannel(session: KeystoreSession, id: string): ChannelRecord {
  const rec = table(session.secret).channels?.[id];
  if (!rec) throw new SwarmpayError('CHANNEL_NOT_FOUND', `no channel ${id} in this datadir`, { hint: 'see `swarmpay channel list`' });
  return rec;
}

/** Reserves the next channel key index (kept with the record written in the same update). */
export function nextKeyIndex(session: KeystoreSession): number {
  return table(session.secret).nextChannelKey ?? 0;
}

/** Writes a channel record; `checkpoint` advances the TPM counter (open and close). */
export async function saveChannel(session: KeystoreSession, rec: ChannelRecord, checkpoint: boolean): Promise<void> {
  await session.update((secret) => {
    const t = table(secret);
    t.channels = { ...(t.channels ?? {}), [rec.id]: rec };
    t.nextChannelKey = Math.max(t.nextChannelKey ?? 0, rec.keyIndex + 1);
  }, { checkpoint });
}

export function termsOf(rec: ChannelRecord): ChannelTerms {
  const t = rec.terms;
  return {
    payerPubkey: Buffer.from(t.payerPubkey, 'hex'),
    payeePubkey: Buffer.from(t.payeePubkey, 'hex'),
    expiry: t.expiry,
    capacity: BigInt(t.capacity),
    closeFee: BigInt(t.closeFee),
    payeeScript: Buffer.from(t.payeeScript, 'hex'),
    payerScript: Buffer.from(t.payerScript, 'hex'),
  };
}

export function fundingOf(rec: ChannelRecord): Outpoint {
  if (!rec.funding) throw new SwarmpayError('CHANNEL_STATE', `channel ${rec.id} has no funding transaction yet`, { hint: 'open it again' });
  return { txid: rec.funding.txid, vout: rec.funding.vout };
}

/** The payee's newest state of a channel: what a close would pay. */
export interface PaymentState {
  seq: number;
  cumulative: bigint;
  /** The payer's signature over the state, hex; null before the first payment. */
  sig: string | null;
}

export interface JournalRecord {
  /** The channel: one journal holds the payments of all a payee's channels, so one fsync covers them all. */
  ch: string;
  seq: number;
  cumulative: string;
  sig: string;
  ids: string[];
}

/** One journal record: a channel's state after a commit, and the batch ids that commit paid. */
export function journalRecord(ch: string, state: PaymentState, ids: string[]): Json {
  return { ch, seq: state.seq, cumulative: state.cumulative.toString(), sig: state.sig, ids };
}

export interface ChannelPayments {
  state: PaymentState;
  ids: Set<string>;
}

function replay(records: Json[]): Map<string, ChannelPayments> {
  const out = new Map<string, ChannelPayments>();
  for (const r of records as unknown as JournalRecord[]) {
    const c = out.get(r.ch) ?? { state: { seq: 0, cumulative: 0n, sig: null }, ids: new Set<string>() };
    c.state = { seq: r.seq, cumulative: BigInt(r.cumulative), sig: r.sig };
    for (const pid of r.ids) c.ids.add(pid);
    out.set(r.ch, c);
  }
  return out;
}

const JOURNAL = 'channel-payments';
const journalFile = (networkDir: string) => path.join(networkDir, 'channels', `${JOURNAL}.journal`);

/** Opens the payee's payment journal to append to, and replays it: per channel, the newest state and every batch id paid. */
export function openPaymentJournal(session: KeystoreSession, networkDir: string): { journal: Journal; channels: Map<string, ChannelPayments> } {
  const { journal, records } = Journal.open(journalFile(networkDir), JOURNAL, session.subkey(JOURNAL));
  return { journal, channels: replay(records) };
}

/** The newest state of one channel, read without touching the file (a server may be appending). */
export function readPaymentState(session: KeystoreSession, networkDir: string, id: string): PaymentState {
  return replay(Journal.read(journalFile(networkDir), JOURNAL, session.subkey(JOURNAL)).records).get(id)?.state ?? { seq: 0, cumulative: 0n, sig: null };
}
