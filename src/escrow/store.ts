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
import type { HtlcTerms } from '../bitcoin/htlc.js';
import { ShapeError, int } from '../util/shape.js';
import { decodeEscrowRecord, type AcceptedRecord, type EscrowRecord } from './record.js';

type Secret = { [k: string]: Json };

/** The keystore's escrow table, as stored: records by id. */
function stored(secret: Secret): { [id: string]: Json } {
  const t = secret.escrows;
  if (t === undefined) return {};
  if (typeof t === 'object' && t !== null && !Array.isArray(t)) return t;
  throw corrupt('escrows must be an object');
}

function corrupt(why: string): SwarmpayError {
  return new SwarmpayError('KEYSTORE_CORRUPT', `the keystore's escrow records are damaged: ${why}`, { hint: 'restore the keystore from a backup; the escrows\' coins are on chain, their keys derive from the mnemonic' });
}

/** A keystore part read through its decoder: a shape error is KEYSTORE_CORRUPT naming the field. */
function decoded<T>(read: () => T): T {
  try {
    return read();
  } catch (e) {
    if (e instanceof ShapeError) throw corrupt(e.message);
    throw e;
  }
}

export function listEscrows(session: ContractStore): EscrowRecord[] {
  return Object.entries(stored(session.secret)).map(([id, v]) => decoded(() => decodeEscrowRecord(v, `escrows.${id}`)));
}

export function findEscrow(session: ContractStore, id: string): EscrowRecord | undefined {
  const v = stored(session.secret)[id];
  return v === undefined ? undefined : decoded(() => decodeEscrowRecord(v, `escrows.${id}`));
}

export function getEscrow(session: ContractStore, id: string): EscrowRecord {
  const rec = findEscrow(session, id);
  if (!rec) throw new SwarmpayError('ESCROW_NOT_FOUND', `no escrow ${id} in this datadir`, { hint: 'see `swarmpay escrow list`' });
  return rec;
}

export function nextEscrowKey(session: ContractStore): number {
  return keyCounter(session.secret);
}

function keyCounter(secret: Secret): number {
  return secret.nextEscrowKey === undefined ? 0 : decoded(() => int(secret, 'nextEscrowKey', 'secret'));
}

/** Writes an escrow record; every escrow step is a checkpoint (the TPM counter advances). */
export async function saveEscrow(session: ContractStore, rec: EscrowRecord): Promise<void> {
  // A record is JSON through and through (strings, integers, objects of them), which TypeScript cannot see of an interface.
  const json = rec as unknown as Json;
  await session.update((secret) => {
    secret.escrows = { ...stored(secret), [rec.id]: json };
    secret.nextEscrowKey = Math.max(keyCounter(secret), rec.keyIndex + 1);
  }, { checkpoint: true });
}

/** The HTLC of an accepted escrow. */
export function htlcTerms(rec: AcceptedRecord): HtlcTerms {
  return {
    template: rec.htlc,
    hash: Buffer.from(rec.offer.hash, 'hex'),
    sellerPubkey: Buffer.from(rec.offer.seller, 'hex'),
    buyerPubkey: Buffer.from(rec.acceptance.buyer, 'hex'),
    timeout: rec.acceptance.timeout,
    value: BigInt(rec.offer.price),
  };
}

function escrowDir(networkDir: string): string {
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
    // The table is frozen (the keystore's parts are copy-on-write): a new one without it.
    const { [id]: _gone, ...rest } = stored(secret);
    secret.escrows = rest;
  }, { checkpoint: true });
}
