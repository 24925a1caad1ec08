/**
 * An append-only journal beside the keystore (the payee's, for all its channels): records
 * sealed with a keystore subkey (AES-256-GCM), appended in batches with one fsync each, so
 * that many payments share one durable write (group commit). Appends are synchronous on
 * purpose: an fdatasync here takes about 0.2 ms, less than what syncing on the thread pool
 * costs under load (measured: the completion waits for a busy core, p50 0.6 ms).
 *
 * Each record's associated data is the journal's name and the record's index, so records
 * cannot be reordered, spliced between journals or replaced. A record cut short by a crash
 * mid-append (never fsynced, so never acknowledged) is dropped when the journal is opened;
 * a damaged record before the last is corruption and refused. A failed append (a full
 * disk) cuts the file back to its last complete record and fails the journal. A journal
 * is read whole when opened, so its owner rewrites it (compacts it) as it grows.
 */
import { closeSync, existsSync, fdatasyncSync, ftruncateSync, mkdirSync, openSync, readFileSync, writeSync } from 'node:fs';
import path from 'node:path';
import { SwarmpayError, ioError } from '../errors.js';
import type { Json } from '../util/canonical-json.js';
import { syncDir, writeFileAtomic } from '../util/atomic-file.js';
import { acquireLock, type Lock } from '../util/file-lock.js';
import { openBytes, sealBytes } from './crypto.js';
import { corrupt } from './format.js';

const LEN = 4;

const IV = 12;
const TAG = 16;

function encode(key: Uint8Array, name: string, index: number, record: Json): Buffer {
  // Plain JSON.stringify: a record is read back by JSON.parse, never hashed, so its key order is free.
  const s = sealBytes(key, Buffer.from(JSON.stringify(record), 'utf8'), `${name}/${index}`);
  const out = Buffer.allocUnsafe(LEN + IV + s.ct.length + TAG);
  out.writeUInt32BE(IV + s.ct.length + TAG, 0);
  s.iv.copy(out, LEN);
  s.ct.copy(out, LEN + IV);
  s.tag.copy(out, LEN + IV + s.ct.length);
  return out;
}

function decode(key: Uint8Array, name: string, index: number, body: Buffer): Json | null {
  if (body.length < IV + TAG) return null;
  const plain = openBytes(key, body.subarray(0, IV), body.subarray(IV, body.length - TAG), body.subarray(body.length - TAG), `${name}/${index}`);
  return plain === null ? null : (JSON.parse(plain.toString('utf8')) as Json);
}

export class Journal {
  private failed: SwarmpayError | null = null;

  private constructor(
    private readonly lock: Lock,
    private fd: number,
    readonly file: string,
    private readonly name: string,
    private readonly key: Uint8Array,
    private count: number,
    private size: number,
  ) {}

  /**
   * Reads a journal without changing it: its records, and the length of the part that is
   * whole (a torn last record, from a crash mid-append, is not counted).
   */
  static read(file: string, name: string, key: Uint8Array): { records: Json[]; whole: number } {
    const records: Json[] = [];
    let whole = 0;
    if (!existsSync(file)) return { records, whole };
    const buf = readFileSync(file);
    for (let off = 0; off < buf.length; ) {
      const complete = off + LEN <= buf.length && off + LEN + buf.readUInt32BE(off) <= buf.length;
      const end = complete ? off + LEN + buf.readUInt32BE(off) : buf.length;
      const rec = complete ? decode(key, name, records.length, buf.subarray(off + LEN, end)) : null;
      if (rec === null) {
        // Only the last record can be a torn append; anything before it is damage.
        if (end < buf.length) throw corrupt(file, `journal record ${records.length} fails authentication`);
        break;
      }
      records.push(rec);
      off = whole = end;
    }
    return { records, whole };
  }

  /** Opens (or creates) a journal to append to, dropping a torn tail; returns it with its records. */
  static open(file: string, name: string, key: Uint8Array): { journal: Journal; records: Json[] } {
    try {
      mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    } catch (e) {
      throw ioError('create', path.dirname(file), e);
    }
    // One writer at a time: a second would interleave records, or cut off the other's tail.
    const lock = acquireLock(`${file}.lock`, `the journal ${file}`);
    try {
      const fresh = !existsSync(file);
      const { records, whole } = Journal.read(file, name, key);
      let fd: number;
      try {
        fd = openSync(file, fresh ? 'w+' : 'r+', 0o600);
        ftruncateSync(fd, whole);
        if (fresh) syncDir(path.dirname(file));
      } catch (e) {
        throw ioError('open', file, e);
      }
      return { journal: new Journal(lock, fd, file, name, key, records.length, whole), records };
    } catch (e) {
      lock.release();
      throw e;
    }
  }

  /** Appends records with one write and one fsync; returns once they are durable. */
  append(records: Json[]): void {
    if (this.failed) throw this.failed;
    const data = this.encode(records, this.count);
    try {
      // A write may be short (a disk filling up): go on until all of it is written or it fails.
      for (let off = 0; off < data.length; ) off += writeSync(this.fd, data, off, data.length - off, this.size + off);
      fdatasyncSync(this.fd);
    } catch (e) {
      this.failed = ioError('append to', this.file, e);
      try {
        ftruncateSync(this.fd, this.size);
      } catch {
        /* the journal is failed either way; reopening drops a torn tail */
      }
      throw this.failed;
    }
    this.size += data.length;
    this.count += records.length;
  }

  /**
   * Replaces every record with these, written beside the journal and renamed over it: a
   * crash or a full disk before the rename leaves the journal as it was, appending goes on
   * and the error is thrown.
   */
  rewrite(records: Json[]): void {
    if (this.failed) throw this.failed;
    const data = this.encode(records, 0);
    writeFileAtomic(this.file, data);
    // Our descriptor still holds the old file, now unlinked: appends go to the new one.
    let fd: number;
    try {
      fd = openSync(this.file, 'r+');
    } catch (e) {
      this.failed = ioError('open', this.file, e);
      throw this.failed;
    }
    closeSync(this.fd);
    this.fd = fd;
    this.size = data.length;
    this.count = records.length;
  }

  /** Records as they go on disk, numbered from `first` (their index is sealed into each). */
  private encode(records: Json[], first: number): Buffer {
    return Buffer.concat(records.map((r, i) => encode(this.key, this.name, first + i, r)));
  }

  get records(): number {
    return this.count;
  }

  /** The journal's length on disk. */
  get bytes(): number {
    return this.size;
  }

  /** Closes the file and lets go of the lock; once (a descriptor closed twice could be another file's by then). */
  close(): void {
    if (this.fd < 0) return;
    closeSync(this.fd);
    this.fd = -1;
    this.lock.release();
  }
}
