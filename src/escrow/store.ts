/**
 * Where escrows live: each one's record (offer, acceptance, status, txids, and for the
 * seller the key K) in the sealed keystore, written at checkpoints, as each step moves
 * coins or secrets; the ciphertext beside it in <network>/escrow/, as it may be large and
 * is no secret once the offer is out.
 */
import { closeSync, existsSync, fstatSync, mkdirSync, openSync, readFileSync, readSync } from 'node:fs';
import path from 'node:path';
import { SwarmpayError, ioError } from '../errors.js';
import type { Json } from '../util/canonical-json.js';
import { writeFileAtomic } from '../util/atomic-file.js';
import type { ContractStore } from '../keystore/keystore.js';
import type { HtlcTemplate, HtlcTerms } from '../bitcoin/htlc.js';
import type { Outpoint } from '../bitcoin/outpoint.js';
import type { Offer } from './offer.js';

export type EscrowRole = 'seller' | 'buyer';
/**
 * offered: the seller waits for a buyer; funded: the HTLC is funded (the seller knows the
 * acceptance); claimed: the seller took the coins; completed: the buyer has the item;
 * refunded: the buyer took the coins back; cheated: the revealed key did not give the item.
 */
export type EscrowStatus = 'offered' | 'funded' | 'claimed' | 'completed' | 'refunded' | 'cheated';

/** What the buyer sends the seller (a file, or over the peer link) once the HTLC is funded. */
export interface Acceptance {
  format: 'swarmpay-acceptance';
  version: 1;
  offer: string;
  /** The buyer's escrow public key, hex. */
  buyer: string;
  /** The absolute timeout height of the HTLC. */
  timeout: number;
  funding: Outpoint;
  /** The signed funding transaction, so a seller whose node has not seen it can broadcast it. */
  tx: string;
}

export interface EscrowRecord {
  id: string;
  role: EscrowRole;
  offer: Offer;
  /** Our key's index on the escrow key chain. */
  keyIndex: number;
  /** The seller's K, hex: a secret until the claim reveals it. The buyer's once learned. */
  key: string | null;
  acceptance: Acceptance | null;
  status: EscrowStatus;
  claimTxid: string | null;
  refundTxid: string | null;
  created: string;
  /**
   * The HTLC's script: 'size-checked' in every record made since the script checks the
   * preimage's size; absent in records written before, whose escrows are 'legacy'.
   */
  htlc?: HtlcTemplate;
}

interface EscrowsSecret {
  escrows?: Record<string, EscrowRecord>;
  nextEscrowKey?: number;
}

function table(secret: { [k: string]: Json }): EscrowsSecret {
  return secret as unknown as EscrowsSecret;
}

export function listEscrows(session: ContractStore): EscrowRecord[] {
  return Object.values(table(session.secret).escrows ?? {});
}

export function findEscrow(session: ContractStore, id: string): EscrowRecord | undefined {
  return table(session.secret).escrows?.[id];
}

export function getEscrow(session: ContractStore, id: string): EscrowRecord {
  const rec = findEscrow(session, id);
  if (!rec) throw new SwarmpayError('ESCROW_NOT_FOUND', `no escrow ${id} in this datadir`, { hint: 'see `swarmpay escrow list`' });
  return rec;
}

export function nextEscrowKey(session: ContractStore): number {
  return table(session.secret).nextEscrowKey ?? 0;
}

/** Writes an escrow record; every escrow step is a checkpoint (the TPM counter advances). */
export async function saveEscrow(session: ContractStore, rec: EscrowRecord): Promise<void> {
  await session.update((secret) => {
    const t = table(secret);
    t.escrows = { ...(t.escrows ?? {}), [rec.id]: rec };
    t.nextEscrowKey = Math.max(t.nextEscrowKey ?? 0, rec.keyIndex + 1);
  }, { checkpoint: true });
}

/** The HTLC of an escrow whose acceptance is known. */
export function htlcTerms(rec: EscrowRecord): HtlcTerms {
  const a = rec.acceptance;
  if (a === null) throw new SwarmpayError('ESCROW_STATE', `escrow ${rec.id} has no acceptance yet`, { hint: 'the seller learns it from `escrow claim --acceptance FILE` or `escrow serve`' });
  return {
    template: rec.htlc ?? 'legacy',
    hash: Buffer.from(rec.offer.hash, 'hex'),
    sellerPubkey: Buffer.from(rec.offer.seller, 'hex'),
    buyerPubkey: Buffer.from(a.buyer, 'hex'),
    timeout: a.timeout,
    value: BigInt(rec.offer.price),
  };
}

export function escrowDir(networkDir: string): string {
  return path.join(networkDir, 'escrow');
}

export function ciphertextPath(networkDir: string, id: string): string {
  return path.join(escrowDir(networkDir), `${id}.enc`);
}

export function writeEscrowFile(networkDir: string, name: string, data: string | Uint8Array): string {
  const file = path.join(escrowDir(networkDir), name);
  try {
    mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    writeFileAtomic(file, data);
  } catch (e) {
    throw e instanceof SwarmpayError ? e : ioError('write', file, e);
  }
  return file;
}

export function readCiphertext(networkDir: string, id: string): Buffer {
  const file = existingCiphertext(networkDir, id);
  try {
    return readFileSync(file);
  } catch (e) {
    throw ioError('read', file, e);
  }
}

/** Reads a ciphertext `chunkBytes` at a time, for sending one chunk at a time: a large item is never in memory whole. */
export async function eachCiphertextChunk(networkDir: string, id: string, chunkBytes: number, chunks: (count: number) => void, chunk: (i: number, data: Buffer) => Promise<void>): Promise<void> {
  const file = existingCiphertext(networkDir, id);
  let fd: number;
  let size: number;
  try {
    fd = openSync(file, 'r');
    size = fstatSync(fd).size;
  } catch (e) {
    throw ioError('read', file, e);
  }
  try {
    const count = Math.ceil(size / chunkBytes);
    chunks(count);
    for (let i = 0; i < count; i++) {
      const data = Buffer.alloc(Math.min(chunkBytes, size - i * chunkBytes));
      try {
        for (let off = 0; off < data.length; ) {
          const n = readSync(fd, data, off, data.length - off, i * chunkBytes + off);
          if (n === 0) throw new Error('the file got shorter while it was read');
          off += n;
        }
      } catch (e) {
        throw ioError('read', file, e);
      }
      await chunk(i, data);
    }
  } finally {
    closeSync(fd);
  }
}

function existingCiphertext(networkDir: string, id: string): string {
  const file = ciphertextPath(networkDir, id);
  if (!existsSync(file)) throw new SwarmpayError('ESCROW_STATE', `the ciphertext of escrow ${id} is missing (${file})`, { hint: 'restore the file; it came with the offer' });
  return file;
}

/** Forgets an escrow whose first step the node refused: nothing of it exists on chain. */
export async function removeEscrow(session: ContractStore, id: string): Promise<void> {
  await session.update((secret) => {
    const t = table(secret);
    // The table is frozen (the keystore's parts are copy-on-write): a new one without it.
    const { [id]: _gone, ...rest } = t.escrows ?? {};
    t.escrows = rest;
  }, { checkpoint: true });
}
