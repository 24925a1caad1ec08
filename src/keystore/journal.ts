/**
 * An append-only journal beside the keystore (the payee's, for all its channels; the
 * payer's, one per channel): records sealed with AES-256-GCM, appended in batches with one
 * fsync each, so that many payments share one durable write (group commit). Appends are
 * synchronous on purpose: an fdatasync here takes about 0.2 ms, less than what syncing on
 * the thread pool costs under load (measured: the completion waits for a busy core, p50
 * 0.6 ms).
 *
 * It cannot be cut short without saying so:
 * - A file starts with a header, written twice, that names its generation (one more at
 *   every rewrite) and a random salt, under an HMAC; one damaged copy is written again
 *   from the other when the journal is opened. The records' key is derived from the
 *   salt, so every rewrite (compaction) starts a new key: a key seals at most one file's
 *   records, a few million at the compaction sizes, far below the 2^32 random 96-bit nonces
 *   GCM allows. Nonces stay random rather than counted: a record cut off by a crash or a
 *   failed write is written again at the same index with other contents, which would
 *   repeat a counted nonce.
 * - Each record's frame carries a check of its index and length, so a damaged length
 *   field is told apart from a record torn by a crash mid-append: only a frame that runs
 *   past the end of the file is torn, and only the last; any other bad frame (zeros
 *   included: they cannot tell how many acknowledged records they replaced) or failed
 *   authentication is corruption (KEYSTORE_CORRUPT), never cut away.
 * - Records chain by hash. The head (generation, records, bytes, hash) is what the owner
 *   records in the keystore (at every TPM counter advance and at a clean close), and a
 *   journal that is older, shorter, or another than that head is refused as a rollback.
 * - `salvage` reads whatever can still be read from a damaged journal, record by record,
 *   and says where the damage is.
 *
 * A journal is read whole when opened, so its owner rewrites it as it grows.
 */
import { createDecipheriv, createHash, createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';
import { closeSync, existsSync, fdatasyncSync, ftruncateSync, linkSync, mkdirSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import path from 'node:path';
import { SwarmpayError, ioError } from '../errors.js';
import type { Json } from '../util/canonical-json.js';
import { writeFileAtomic } from '../util/atomic-file.js';
import { acquireLock, type Lock } from '../util/file-lock.js';
import { openBytes, sealBytes } from './crypto.js';

const damaged = (file: string, why: string) =>
  new SwarmpayError('KEYSTORE_CORRUPT', `the journal ${file} is damaged: ${why}`, {
    hint: '`swarmpay channel recover` keeps every record, and every state, that can still be verified (the damaged file is kept beside it); or put back a copy from a backup',
  });

/** Where a journal stands: what the keystore records, so that an older copy is refused. */
export interface JournalHead {
  gen: number;
  records: number;
  bytes: number;
  /** SHA-256 chain over the header and every record, hex. */
  hash: string;
}

const MAGIC = Buffer.from('SWJ2', 'latin1');
const SALT = 24;
const MAC = 32;
/** magic, generation, salt, HMAC; written twice so one damaged copy loses nothing. */
const HEADER = 4 + 4 + SALT + MAC;
const HEADERS = 2 * HEADER;
/** A record's frame: the length of what follows, and a check of its index and length. */
const FRAME = 8;
const IV = 12;
const TAG = 16;
/** Larger than any record an owner writes (10,000 batch ids); a check that passes on a larger length is damage. */
const MAX_RECORD = 16 * 1024 * 1024;

interface FileKeys {
  gen: number;
  salt: Buffer;
  key: Buffer;
  header: Buffer;
}

function headerMac(key: Uint8Array, name: string, body: Uint8Array): Buffer {
  return createHmac('sha256', key).update(`swarmpay journal header/${name}\0`).update(body).digest();
}

function newHeader(key: Uint8Array, name: string, gen: number): FileKeys {
  const salt = randomBytes(SALT);
  const header = Buffer.alloc(HEADER);
  MAGIC.copy(header, 0);
  header.writeUInt32BE(gen, 4);
  salt.copy(header, 8);
  headerMac(key, name, header.subarray(0, 8 + SALT)).copy(header, 8 + SALT);
  return { gen, salt, key: recordKey(key, name, salt), header };
}

/** The header at `off`, or null if it is not one this key wrote for this name. */
function parseHeader(buf: Buffer, off: number, key: Uint8Array, name: string): FileKeys | null {
  if (buf.length < off + HEADER || !buf.subarray(off, off + 4).equals(MAGIC)) return null;
  const header = buf.subarray(off, off + HEADER);
  if (!timingSafeEqual(headerMac(key, name, header.subarray(0, 8 + SALT)), header.subarray(8 + SALT))) return null;
  return rawHeader(buf, off, key, name);
}

/** The header at `off` taken as it is, its HMAC unchecked: salvage tries its salt, and the records' tags tell whether it is right. */
function rawHeader(buf: Buffer, off: number, key: Uint8Array, name: string): FileKeys | null {
  if (buf.length < off + HEADER) return null;
  const header = Buffer.from(buf.subarray(off, off + HEADER));
  const salt = Buffer.from(header.subarray(8, 8 + SALT));
  return { gen: header.readUInt32BE(4), salt, key: recordKey(key, name, salt), header };
}

const recordKey = (key: Uint8Array, name: string, salt: Uint8Array) => Buffer.from(hkdfSync('sha256', key, salt, `swarmpay journal records/${name}`, 32));

function frameCheck(salt: Uint8Array, index: number, len: number): number {
  const b = Buffer.allocUnsafe(8);
  b.writeUInt32BE(index, 0);
  b.writeUInt32BE(len, 4);
  return createHash('sha256').update(salt).update(b).digest().readUInt32BE(0);
}

const chain = (prev: Buffer, bytes: Uint8Array) => createHash('sha256').update(prev).update(bytes).digest();

function encodeRecord(fk: FileKeys, name: string, index: number, record: Json): Buffer {
  // Plain JSON.stringify: a record is read back by JSON.parse, never hashed as JSON, so its key order is free.
  const s = sealBytes(fk.key, Buffer.from(JSON.stringify(record), 'utf8'), `${name}/${index}`);
  const len = IV + s.ct.length + TAG;
  if (len > MAX_RECORD) throw new SwarmpayError('INTERNAL', `a journal record of ${len} bytes is larger than ${MAX_RECORD}`);
  const out = Buffer.allocUnsafe(FRAME + len);
  out.writeUInt32BE(len, 0);
  out.writeUInt32BE(frameCheck(fk.salt, index, len), 4);
  s.iv.copy(out, FRAME);
  s.ct.copy(out, FRAME + IV);
  s.tag.copy(out, FRAME + IV + s.ct.length);
  return out;
}

/** A record's frame at `off`: its length if the check holds, 'short' if the file ends inside the frame, null if damaged. */
function frameAt(buf: Buffer, off: number, salt: Uint8Array, index: number): number | 'short' | null {
  if (off + FRAME > buf.length) return 'short';
  const len = buf.readUInt32BE(off);
  if (len < IV + TAG || len > MAX_RECORD || buf.readUInt32BE(off + 4) !== frameCheck(salt, index, len)) return null;
  return len;
}

function openRecord(fk: FileKeys, name: string, index: number, body: Buffer): Json | null {
  const plain = openBytes(fk.key, body.subarray(0, IV), body.subarray(IV, body.length - TAG), body.subarray(body.length - TAG), `${name}/${index}`);
  return plain === null ? null : (JSON.parse(plain.toString('utf8')) as Json);
}

/** GCM without its tag is CTR: the bytes as written, unauthenticated (salvage shows them only for what proves itself, a signature). */
function openUnauthenticated(fk: FileKeys, body: Buffer): Json | null {
  try {
    const d = createDecipheriv('aes-256-gcm', fk.key, body.subarray(0, IV));
    return JSON.parse(d.update(body.subarray(IV, body.length - TAG)).toString('utf8')) as Json;
  } catch {
    return null;
  }
}

/** Either header's magic: one damaged copy still marks the file as version 2 (and never as a version 1 to migrate). */
const isVersion2 = (buf: Buffer) => buf.subarray(0, 4).equals(MAGIC) || buf.subarray(HEADER, HEADER + 4).equals(MAGIC);

const allZero = (b: Buffer) => b.every((x) => x === 0);

const rolledBack = (file: string, why: string) =>
  new SwarmpayError('ROLLBACK_DETECTED', `the journal ${file} is older than the keystore recorded: ${why}`, {
    hint: 'put the newest copy of the journal back; failing that, `swarmpay channel recover` keeps every state that can still be verified',
  });

/** Checks a journal read whole against the head the keystore recorded. */
function checkPinned(file: string, { fk, hashes, legacy }: Parsed, pinned: JournalHead | null): void {
  if (pinned === null) return;
  if (fk === null) throw rolledBack(file, `it is ${legacy ? 'a version 1 journal' : 'missing'}; the keystore recorded generation ${pinned.gen} with ${pinned.records} records`);
  if (fk.gen < pinned.gen) throw rolledBack(file, `it is generation ${fk.gen}; the keystore recorded generation ${pinned.gen}`);
  if (fk.gen > pinned.gen) return;
  const at = hashes[pinned.records];
  if (at === undefined) throw rolledBack(file, `it holds ${hashes.length - 1} records; the keystore recorded ${pinned.records}`);
  if (at.toString('hex') !== pinned.hash) throw rolledBack(file, `its first ${pinned.records} records are not the ones the keystore recorded`);
}

/**
 * The journal's version 1 (no header, records sealed under the journal key itself, no frame
 * check): read once to be rewritten as version 2, the old file kept beside it.
 */
function readLegacy(file: string, buf: Buffer, name: string, key: Uint8Array): Json[] {
  const records: Json[] = [];
  for (let off = 0; off < buf.length; ) {
    const end = off + 4 <= buf.length ? off + 4 + buf.readUInt32BE(off) : Infinity;
    const body = end <= buf.length ? buf.subarray(off + 4, end) : null;
    const plain = body && body.length >= IV + TAG ? openBytes(key, body.subarray(0, IV), body.subarray(IV, body.length - TAG), body.subarray(body.length - TAG), `${name}/${records.length}`) : null;
    if (plain === null) {
      if (end <= buf.length) throw damaged(file, `record ${records.length} at byte ${off} fails authentication`);
      // Version 1 cannot tell a torn tail from a damaged length: what it drops stays in the copy kept at migration.
      break;
    }
    records.push(JSON.parse(plain.toString('utf8')) as Json);
    off = end;
  }
  return records;
}

/**
 * A version 1 journal's records, or null if the bytes are not one: an empty file, or one
 * whose records authenticate as version 1. A version 2 file whose both magics were damaged
 * reads as no version 1 record, and is damage, never a journal of nothing to migrate.
 */
function legacyRecords(file: string, buf: Buffer, name: string, key: Uint8Array): Json[] | null {
  if (buf.length === 0) return [];
  try {
    const records = readLegacy(file, buf, name, key);
    return records.length > 0 ? records : null;
  } catch {
    return null;
  }
}

interface Parsed {
  fk: FileKeys | null;
  records: Json[];
  /** hashes[i]: the chain after i records. */
  hashes: Buffer[];
  whole: number;
  legacy: boolean;
  /** The offset of a header copy that is damaged while the other holds, to write again; null if both hold. */
  badHeader: number | null;
}

function parse(file: string, name: string, key: Uint8Array): Parsed {
  if (!existsSync(file)) return { fk: null, records: [], hashes: [], whole: 0, legacy: false, badHeader: null };
  let buf: Buffer;
  try {
    buf = readFileSync(file);
  } catch (e) {
    throw ioError('read', file, e);
  }
  const legacy = isVersion2(buf) ? null : legacyRecords(file, buf, name, key);
  if (legacy !== null) return { fk: null, records: legacy, hashes: [], whole: 0, legacy: true, badHeader: null };
  const a = parseHeader(buf, 0, key, name);
  const b = parseHeader(buf, HEADER, key, name);
  // One damaged copy loses nothing: the other is the header. Two that differ and both hold were spliced.
  if ((a === null && b === null) || (a !== null && b !== null && !a.header.equals(b.header))) throw damaged(file, a === null ? 'both headers are damaged' : 'its two headers differ');
  const fk = (a ?? b)!;
  const records: Json[] = [];
  const hashes = [chain(Buffer.alloc(32), fk.header)];
  let off = HEADERS;
  while (off < buf.length) {
    const i = records.length;
    const len = frameAt(buf, off, fk.salt, i);
    // Torn: the file ends inside this (last) record. Anything else (zeros included) is damage, never cut away.
    if (len === 'short' || (len !== null && off + FRAME + len > buf.length)) break;
    if (len === null) throw damaged(file, `record ${i} at byte ${off} has a damaged frame`);
    const rec = openRecord(fk, name, i, buf.subarray(off + FRAME, off + FRAME + len));
    if (rec === null) throw damaged(file, `record ${i} at byte ${off} fails authentication`);
    records.push(rec);
    hashes.push(chain(hashes[i]!, buf.subarray(off, off + FRAME + len)));
    off += FRAME + len;
  }
  return { fk, records, hashes, whole: off, legacy: false, badHeader: a === null ? 0 : b === null ? HEADER : null };
}

/** What `salvage` found at one place: a record (authenticated, or only decrypted), or damage. */
export type Salvaged =
  | { kind: 'record'; index: number; offset: number; value: Json; authentic: boolean }
  | { kind: 'damage'; offset: number; bytes: number; what: string };

/** Candidate indexes a resynchronising scan tries past a damaged frame. */
const RESYNC_INDEXES = 8;

export class Journal {
  private failed: SwarmpayError | null = null;

  private constructor(
    private readonly lock: Lock,
    private fd: number,
    readonly file: string,
    private readonly name: string,
    private readonly key: Uint8Array,
    private fk: FileKeys,
    private count: number,
    private size: number,
    private hash: Buffer,
  ) {}

  /**
   * Reads a journal without changing it, checked against the head the keystore recorded
   * (null: none recorded). A torn last record, from a crash mid-append, is not counted.
   */
  static read(file: string, name: string, key: Uint8Array, pinned: JournalHead | null = null): { records: Json[] } {
    const p = parse(file, name, key);
    checkPinned(file, p, pinned);
    return { records: p.records };
  }

  /**
   * Opens (or creates) a journal to append to, checked against the head the keystore
   * recorded; drops a torn tail. A version 1 journal is rewritten as version 2, the old file
   * kept beside it (`.v1`).
   */
  static open(file: string, name: string, key: Uint8Array, pinned: JournalHead | null = null): { journal: Journal; records: Json[] } {
    try {
      mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    } catch (e) {
      throw ioError('create', path.dirname(file), e);
    }
    // One writer at a time: a second would interleave records, or cut off the other's tail.
    const lock = acquireLock(`${file}.lock`, `the journal ${file}`);
    try {
      const p = parse(file, name, key);
      checkPinned(file, p, pinned);
      if (p.fk === null) {
        if (p.legacy) keepCopy(file, `${file}.v1`);
        const j = Journal.create(lock, file, name, key, 1, p.records);
        return { journal: j, records: p.records };
      }
      let fd: number;
      try {
        fd = openSync(file, 'r+', 0o600);
        ftruncateSync(fd, p.whole);
        if (p.badHeader !== null) {
          writeSync(fd, p.fk.header, 0, HEADER, p.badHeader);
          fdatasyncSync(fd);
        }
      } catch (e) {
        throw ioError('open', file, e);
      }
      return { journal: new Journal(lock, fd, file, name, key, p.fk, p.records.length, p.whole, p.hashes[p.records.length]!), records: p.records };
    } catch (e) {
      lock.release();
      throw e;
    }
  }

  /**
   * Reads what can still be read of a damaged journal: every record whose frame holds (past
   * a damaged frame, the scan looks for the next record), authenticated or, where
   * authentication fails, only decrypted; and where the damage lies.
   */
  static salvage(file: string, name: string, key: Uint8Array): { gen: number; found: Salvaged[] } {
    let buf: Buffer;
    try {
      buf = readFileSync(file);
    } catch (e) {
      throw ioError('read', file, e);
    }
    return salvageBuffer(file, buf, name, key);
  }

  /**
   * Replaces a damaged journal by the records `choose` keeps of what `salvage` found, as a
   * new generation past both its own and `minGen` (the one the keystore recorded), keeping
   * the damaged file beside it as `keepAs`. Under the journal's lock: refused while a
   * server appends to it.
   */
  static recover(file: string, name: string, key: Uint8Array, minGen: number, choose: (found: Salvaged[]) => Json[], keepAs: string): { found: Salvaged[]; head: JournalHead } {
    const lock = acquireLock(`${file}.lock`, `the journal ${file}`);
    try {
      const { gen, found } = existsSync(file) ? Journal.salvage(file, name, key) : { gen: 0, found: [] };
      const records = choose(found);
      if (existsSync(file)) keepCopy(file, keepAs);
      const next = Math.max(gen, minGen) + 1;
      const g = writeGeneration(file, name, key, next, records);
      return { found, head: { gen: next, records: records.length, bytes: g.size, hash: g.hash.toString('hex') } };
    } finally {
      lock.release();
    }
  }
  /** Writes a new generation of these records over `file`; returns it open to append. */
  private static create(lock: Lock, file: string, name: string, key: Uint8Array, gen: number, records: Json[]): Journal {
    const g = writeGeneration(file, name, key, gen, records);
    return new Journal(lock, reopen(file), file, name, key, g.fk, records.length, g.size, g.hash);
  }

  /** Appends records with one write and one fsync; returns once they are durable. */
  append(records: Json[]): void {
    if (this.failed) throw this.failed;
    const { data, hash } = encodeAll(this.fk, this.name, this.count, this.hash, records);
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
    this.hash = hash;
  }

  /**
   * Replaces every record with these, as the next generation under a new key, written beside
   * the journal and renamed over it: a crash or a full disk before the rename leaves the
   * journal as it was, appending goes on and the error is thrown.
   */
  rewrite(records: Json[]): void {
    if (this.failed) throw this.failed;
    const g = writeGeneration(this.file, this.name, this.key, this.fk.gen + 1, records);
    let fd: number;
    try {
      fd = reopen(this.file);
    } catch (e) {
      // The new generation is on disk but not open: appending to the old one would lose records.
      this.failed = e as SwarmpayError;
      throw e;
    }
    // Our descriptor still holds the old file, now unlinked: appends go to the new one.
    closeSync(this.fd);
    this.fd = fd;
    this.fk = g.fk;
    this.size = g.size;
    this.count = records.length;
    this.hash = g.hash;
  }

  /** What is durable now: the head to record in the keystore. */
  get head(): JournalHead {
    return { gen: this.fk.gen, records: this.count, bytes: this.size, hash: this.hash.toString('hex') };
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

/** Writes a whole journal file of these records (generation `gen`, a new key) over `file`, atomically. */
function writeGeneration(file: string, name: string, key: Uint8Array, gen: number, records: Json[]): { fk: FileKeys; size: number; hash: Buffer } {
  const fk = newHeader(key, name, gen);
  const { data, hash } = encodeAll(fk, name, 0, chain(Buffer.alloc(32), fk.header), records);
  writeFileAtomic(file, Buffer.concat([fk.header, fk.header, data]));
  return { fk, size: HEADERS + data.length, hash };
}

function reopen(file: string): number {
  try {
    return openSync(file, 'r+');
  } catch (e) {
    throw ioError('open', file, e);
  }
}

function encodeAll(fk: FileKeys, name: string, first: number, prev: Buffer, records: Json[]): { data: Buffer; hash: Buffer } {
  const parts = records.map((r, i) => encodeRecord(fk, name, first + i, r));
  let hash = prev;
  for (const p of parts) hash = chain(hash, p);
  return { data: Buffer.concat(parts), hash };
}

/** `Journal.salvage` of bytes already read. */
function salvageBuffer(file: string, buf: Buffer, name: string, key: Uint8Array): { gen: number; found: Salvaged[] } {
  const legacy = isVersion2(buf) ? null : legacyRecords(file, buf, name, key);
  if (legacy !== null) return { gen: 0, found: legacy.map((value, index) => ({ kind: 'record' as const, index, offset: -1, value, authentic: true })) };
  const a = parseHeader(buf, 0, key, name);
  const b = parseHeader(buf, HEADER, key, name);
  const headerDamage: Salvaged[] = [];
  if (a === null) headerDamage.push({ kind: 'damage', offset: 0, bytes: HEADER, what: 'header 1 is damaged' });
  if (b === null) headerDamage.push({ kind: 'damage', offset: HEADER, bytes: HEADER, what: 'header 2 is damaged' });
  // With both headers damaged, their salts are tried as they are: the records' tags say which is right.
  const candidates = a ?? b ? [(a ?? b)!] : [rawHeader(buf, 0, key, name), rawHeader(buf, HEADER, key, name)].filter((h): h is FileKeys => h !== null);
  let best: Salvaged[] = [];
  for (const fk of candidates) {
    const found = salvageRecords(buf, fk, name);
    if (best.length === 0 || authenticCount(found) > authenticCount(best)) best = found;
  }
  return { gen: (a ?? b)?.gen ?? 0, found: [...headerDamage, ...best] };
}

const authenticCount = (found: Salvaged[]) => found.filter((f) => f.kind === 'record' && f.authentic).length;

/** The records after the headers, under one header's key. */
function salvageRecords(buf: Buffer, fk: FileKeys, name: string): Salvaged[] {
  const found: Salvaged[] = [];
  let off = HEADERS;
  let index = 0;
  while (off < buf.length) {
    const len = frameAt(buf, off, fk.salt, index);
    if (len === 'short' || (len !== null && off + FRAME + len > buf.length)) {
      found.push({ kind: 'damage', offset: off, bytes: buf.length - off, what: `record ${index} is torn (the file ends inside it)` });
      break;
    }
    if (len !== null) {
      const body = buf.subarray(off + FRAME, off + FRAME + len);
      const value = openRecord(fk, name, index, body);
      if (value !== null) found.push({ kind: 'record', index, offset: off, value, authentic: true });
      else {
        found.push({ kind: 'damage', offset: off, bytes: FRAME + len, what: `record ${index} fails authentication` });
        const raw = openUnauthenticated(fk, body);
        if (raw !== null) found.push({ kind: 'record', index, offset: off, value: raw, authentic: false });
      }
      off += FRAME + len;
      index++;
      continue;
    }
    if (allZero(buf.subarray(off))) {
      found.push({ kind: 'damage', offset: off, bytes: buf.length - off, what: `zeros from record ${index} on` });
      break;
    }
    const next = resync(buf, off + 1, fk, name, index);
    if (next === null) {
      found.push({ kind: 'damage', offset: off, bytes: buf.length - off, what: `record ${index} has a damaged frame; nothing after it could be read` });
      break;
    }
    found.push({ kind: 'damage', offset: off, bytes: next.off - off, what: `record${next.index - index > 1 ? `s ${index}-${next.index - 1}` : ` ${index}`} lost to a damaged frame` });
    off = next.off;
    index = next.index;
  }
  return found;
}

/** The next record past a damaged frame: a frame that checks for one of the next indexes and authenticates. */
function resync(buf: Buffer, from: number, fk: FileKeys, name: string, index: number): { off: number; index: number } | null {
  for (let off = from; off + FRAME + IV + TAG <= buf.length; off++) {
    const len = buf.readUInt32BE(off);
    if (len < IV + TAG || off + FRAME + len > buf.length) continue;
    for (let i = index + 1; i <= index + RESYNC_INDEXES; i++) {
      if (frameAt(buf, off, fk.salt, i) === len && openRecord(fk, name, i, buf.subarray(off + FRAME, off + FRAME + len)) !== null) return { off, index: i };
    }
  }
  return null;
}

/** Keeps the file as it is under another name (a hard link: no copy, and the original is renamed over next). */
function keepCopy(file: string, as: string): void {
  try {
    rmSync(as, { force: true });
    linkSync(file, as);
  } catch (e) {
    throw ioError('keep a copy of', file, e);
  }
}
