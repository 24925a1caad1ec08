/**
 * The keystore: one file per network holding the wallet's secrets (and, as capabilities
 * arrive, channel and escrow state), encrypted with a random 256-bit data key that never
 * changes. A protector guards the data key: a passphrase (scrypt), or the TPM, which
 * seals it under its storage key (optionally bound to PCRs) and keeps a monotonic
 * counter that refuses a rolled-back file.
 *
 * Anti-rollback order of writes, so that a crash never bricks the wallet: a checkpoint
 * first writes the file at counter N+1, then advances the TPM counter to N+1. On open,
 * a file at the TPM's value is current; one at value+1 is a checkpoint a crash cut short,
 * finished now; anything older was rolled back and is refused.
 */
import { hkdfSync, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { SwarmpayError, ioError } from '../errors.js';
import type { NetworkName } from '../bitcoin/network.js';
import { acquireLock } from '../util/file-lock.js';
import { faultPoint } from '../util/fault.js';
import { canonicalJson, deepFreeze, type Json } from '../util/canonical-json.js';
import { ShapeError, asObj, hex, int } from '../util/shape.js';
import type { Tpm } from '../tpm/tpm.js';
import { Journal, type JournalHead, type Salvaged } from './journal.js';
import { DEFAULT_SCRYPT, deriveKey, open, seal, type ScryptParams } from './crypto.js';
import { KEYSTORE_FORMAT, KEYSTORE_VERSION, corrupt, headerAad, readKeystore, writeKeystore, type KeystoreFile, type KeystoreHeader, type TpmProtector } from './format.js';

export { keystorePath, readKeystore } from './format.js';
export type { KeystoreHeader } from './format.js';

/** Supplies what a protector needs, only when it is needed (a prompt, a TPM connection). */
export interface Unlocker {
  passphrase(): Promise<string>;
  tpm(): Promise<Tpm>;
}

const wrapAad = (network: NetworkName) => `${KEYSTORE_FORMAT}/${KEYSTORE_VERSION}/data-key/${network}`;

function ensureDir(file: string): void {
  try {
    mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  } catch (e) {
    throw ioError('create', path.dirname(file), e);
  }
}

function encryptPayload(dataKey: Uint8Array, header: KeystoreHeader, secret: { [k: string]: Json }) {
  return seal(dataKey, Buffer.from(canonicalJson(secret), 'utf8'), headerAad(header));
}

/** Creates a passphrase keystore; refuses to overwrite one, which may hold the only copy of a seed. */
export function createKeystore(
  file: string,
  network: NetworkName,
  passphrase: string,
  publicPart: { [k: string]: Json },
  secret: { [k: string]: Json },
  scrypt: Omit<ScryptParams, 'salt'> = DEFAULT_SCRYPT,
): KeystoreHeader {
  ensureDir(file);
  const lock = acquireLock(`${file}.lock`, 'the keystore');
  try {
    if (existsSync(file)) {
      throw new SwarmpayError('KEYSTORE_EXISTS', `a wallet already exists at ${file}`, {
        hint: 'use another --datadir; swarmpay never overwrites a keystore, which may hold the only copy of a seed',
      });
    }
    const kdf = { name: 'scrypt' as const, ...scrypt, salt: randomBytes(16).toString('hex') };
    const dataKey = randomBytes(32);
    const header: KeystoreHeader = {
      network,
      created: new Date().toISOString(),
      protector: { type: 'passphrase', kdf, wrappedKey: seal(deriveKey(passphrase, kdf), dataKey, wrapAad(network)) },
      counter: '0',
      public: publicPart,
    };
    writeKeystore(file, header, encryptPayload(dataKey, header, secret));
    return header;
  } finally {
    lock.release();
  }
}

/** Recovers the data key with whatever the protector needs. */
async function dataKeyOf(doc: KeystoreFile, unlocker: Unlocker): Promise<Buffer> {
  const p = doc.header.protector;
  if (p.type === 'passphrase') {
    const key = open(deriveKey(await unlocker.passphrase(), p.kdf), p.wrappedKey, wrapAad(doc.header.network));
    if (key === null) {
      throw new SwarmpayError('WRONG_PASSPHRASE', 'the passphrase does not unlock this keystore', {
        hint: 'check the passphrase (or --passphrase-file) and try again; nothing was changed',
      });
    }
    return key;
  }
  return (await unlocker.tpm()).unseal({ public: p.sealed.public, private: p.sealed.private, pcrs: p.pcrs, srkName: p.srkName });
}

function decryptPayload(file: string, doc: KeystoreFile, dataKey: Uint8Array): { [k: string]: Json } {
  const plain = open(dataKey, doc.payload, headerAad(doc.header));
  if (plain === null) throw corrupt(file, 'its encrypted contents fail authentication (the file was altered)');
  try {
    return deepFreeze(asObj(JSON.parse(plain.toString('utf8')), 'secret') as { [k: string]: Json });
  } catch (e) {
    throw corrupt(file, (e as Error).message);
  }
}

/**
 * How a file's counter stands against the TPM's: equal is current, one ahead is a
 * checkpoint a crash interrupted (the next open finishes it), older was rolled back, and
 * further ahead belongs with another TPM.
 */
export type CounterStanding = 'current' | 'interrupted' | 'rolled-back' | 'ahead';

export function counterStanding(written: bigint, now: bigint): CounterStanding {
  return written === now ? 'current' : written === now + 1n ? 'interrupted' : written < now ? 'rolled-back' : 'ahead';
}

export function rollbackError(file: string, written: bigint, now: bigint, more: Record<string, unknown> = {}): SwarmpayError {
  return new SwarmpayError('ROLLBACK_DETECTED', `the keystore ${file} was ${written < now ? 'rolled back' : 'written ahead of this TPM'}: it was written at counter ${written}, the TPM's counter is ${now}`, {
    hint: written < now ? 'put the newest keystore file back (an older copy would undo payments); failing that, restore the wallet from its mnemonic into a new datadir' : 'this file does not belong with this TPM; use the TPM it was provisioned on',
    details: { fileCounter: written.toString(), tpmCounter: now.toString(), ...more },
  });
}

/**
 * The counter's authValue: derived from the data key, so only who unlocked this keystore can
 * advance its counter (a stranger with TPM access could otherwise push it ahead and lock the
 * wallet out). A counter defined before counters had one has the empty auth.
 */
function counterAuth(p: { counterAuth?: true }, dataKey: Uint8Array): Uint8Array {
  return p.counterAuth ? Buffer.from(hkdfSync('sha256', dataKey, Buffer.alloc(0), 'swarmpay anti-rollback counter auth', 32)) : new Uint8Array(0);
}

/** Refuses a file that is not current, after finishing a checkpoint a crash interrupted. */
async function checkRollback(file: string, p: TpmProtector, written: bigint, tpm: Tpm, dataKey: Uint8Array): Promise<void> {
  const now = await tpm.readCounter(p.counterIndex, counterAuth(p, dataKey), p.srkName);
  const standing = counterStanding(written, now);
  if (standing === 'current') return;
  if (standing === 'interrupted') return tpm.incrementCounter(p.counterIndex, counterAuth(p, dataKey));
  throw rollbackError(file, written, now);
}

/**
 * Writes the keystore (the caller holds the lock). A checkpoint of a TPM keystore writes
 * the file at counter N+1 first, then advances the TPM counter to N+1.
 */
async function write(
  file: string,
  header: KeystoreHeader,
  dataKey: Uint8Array,
  secret: { [k: string]: Json },
  tpm: Tpm | null,
  checkpoint: boolean,
): Promise<{ header: KeystoreHeader; checksum: string }> {
  const p = header.protector;
  const advance = checkpoint && p.type === 'tpm' && tpm !== null;
  const next: KeystoreHeader = advance ? { ...header, counter: (BigInt(header.counter) + 1n).toString() } : header;
  const checksum = writeKeystore(file, next, encryptPayload(dataKey, next, secret));
  if (advance) {
    faultPoint('kill-before-counter');
    await tpm.incrementCounter(p.counterIndex, counterAuth(p, dataKey));
  }
  return { header: next, checksum };
}

/** Changes to write together: each one's mutation, whether any asks a checkpoint, and the write's outcome per change. */
interface Batch {
  changes: ((secret: { [k: string]: Json }) => void)[];
  checkpoint: boolean;
  written: Promise<unknown[]>;
}

type FileId = { ino: bigint; size: bigint; mtimeNs: bigint };

function fileId(file: string): FileId | null {
  try {
    const st = statSync(file, { bigint: true });
    return { ino: st.ino, size: st.size, mtimeNs: st.mtimeNs };
  } catch {
    return null;
  }
}

function sameFile(file: string, known: FileId | null): boolean {
  const now = known === null ? null : fileId(file);
  return known !== null && now !== null && now.ino === known.ino && now.size === known.size && now.mtimeNs === known.mtimeNs;
}

/**
 * Writes a burst of updates shares: an update that follows a write closely waits for
 * others to join it, for BURST_FACTOR times what that write took (a keystore of thousands
 * of channels costs milliseconds to write: writing it at most a tenth of the time keeps it
 * from costing the process its memory and its time), within these bounds.
 */
const BURST_FACTOR = 10;
const BURST_MIN_MS = 5;
const BURST_MAX_MS = 200;

/** Records journals' heads in the secret (copy-on-write: the table is replaced, not edited). */
function recordHeads(secret: { [k: string]: Json }, heads: [string, JournalHead][]): void {
  // Written only here, as plain objects of a JournalHead's fields; read back by journalHead().
  const table: { [name: string]: Json } = { ...(secret.journals as { [name: string]: Json } | undefined) };
  for (const [name, h] of heads) table[name] = { ...h };
  secret.journals = table;
}

/** Per keystore file, the end of this process's queue of updates to it. */
const updates = new Map<string, Promise<unknown>>();

/**
 * An unlocked keystore: the data key held in memory for this process (no TPM round trip
 * after the first unseal), the secret as last read or written, and updates that re-check
 * the file is still the one this session knows.
 */
export class KeystoreSession {
  constructor(
    readonly file: string,
    readonly network: NetworkName,
    private readonly dataKey: Buffer,
    public header: KeystoreHeader,
    public secret: { [k: string]: Json },
    private readonly tpm: Tpm | null,
    private checksum: string,
  ) {}

  /** The updates waiting for the write after the one under way; null when none waits. */
  private next: Batch | null = null;
  /** performance.now() of this session's last write, and which file it wrote. */
  private wroteAt = -Infinity;
  private writeMs = 0;
  private wrote: FileId | null = null;
  /** Journals this session has open: their heads go into every write of the keystore. */
  private readonly journals = new Map<string, Journal>();

  /**
   * Changes the secret and writes it. With `checkpoint` a TPM keystore's counter advances
   * (channel open and close, escrow steps), so that older copies are refused from then on.
   * If another process wrote the file meanwhile (a `wallet send` beside a long-running
   * `channel serve`), the change is applied to what it wrote, never over it: the newer
   * file is authenticated with the data key and, on a TPM, checked against the counter.
   */
  async update(mutate: (secret: { [k: string]: Json }) => void, opts: { checkpoint?: boolean } = {}): Promise<void> {
    // Updates from one process go one at a time: a checkpoint awaits the TPM between its file
    // write and its counter increment, and a second update in that gap would advance the
    // counter again (the file would then look rolled back). Those that queue up meanwhile
    // are written together, with one write (a burst of a hundred channel opens rewrites
    // the keystore a few times, not a hundred).
    let batch = this.next;
    if (batch === null) {
      const b: Batch = { changes: [], checkpoint: false, written: null! };
      this.next = batch = b;
      b.written = (updates.get(this.file) ?? Promise.resolve())
        // Right after a write (a burst of updates: opens arriving together), the next waits a
        // moment for the others of the burst, and they go in one write.
        .then(() => {
          const wait = Math.min(BURST_MAX_MS, Math.max(BURST_MIN_MS, BURST_FACTOR * this.writeMs));
          return performance.now() - this.wroteAt < wait ? new Promise((r) => setTimeout(r, wait)) : undefined;
        })
        .then(() => {
          if (this.next === b) this.next = null;
          return this.write(b);
        });
      updates.set(this.file, b.written.catch(() => undefined));
    }
    const i = batch.changes.push(mutate) - 1;
    batch.checkpoint ||= !!opts.checkpoint;
    const refused = (await batch.written)[i];
    if (refused !== undefined) throw refused;
  }

  /**
   * Takes what another process wrote to the file since this session read or wrote it (the
   * caller holds the lock): authenticated with the data key and, on a TPM, checked against
   * the counter. The file as this session last wrote it (same inode, size and time: every
   * write is a rename of a new file) is not read, parsed and hashed again.
   */
  private async adoptNewer(): Promise<void> {
    const doc = sameFile(this.file, this.wrote) ? null : readKeystore(this.file, this.network);
    if (doc === null || doc.checksum === this.checksum) return;
    const p = doc.header.protector;
    if (p.type !== this.header.protector.type) throw new SwarmpayError('KEYSTORE_BUSY', `the keystore ${this.file} was re-provisioned by another process`, { hint: 'run the command again; nothing was written' });
    const secret = decryptPayload(this.file, doc, this.dataKey);
    if (p.type === 'tpm' && this.tpm) await checkRollback(this.file, p, BigInt(doc.header.counter), this.tpm, this.dataKey);
    this.secret = secret;
    this.header = doc.header;
    this.checksum = doc.checksum;
    this.wrote = fileId(this.file);
  }

  /**
   * Reads again what another process wrote to the keystore since (an `escrow offer` beside a
   * running `escrow serve`), after the updates this session has queued.
   */
  async refresh(): Promise<void> {
    await (updates.get(this.file) ?? Promise.resolve());
    const lock = acquireLock(`${this.file}.lock`, 'the keystore');
    try {
      await this.adoptNewer();
    } finally {
      lock.release();
    }
  }

  /** Applies a batch of changes in order and writes the result once; returns, per change, what it threw (undefined if it applied). */
  private async write(batch: Batch): Promise<unknown[]> {
    const lock = acquireLock(`${this.file}.lock`, 'the keystore');
    try {
      await this.adoptNewer();
      // Copy-on-write: the secret's parts are frozen, so a change replaces what it changes (a
      // new table of channels, say) and cannot edit what this session still holds.
      const secret = { ...this.secret };
      // A change that throws has changed nothing (each checks before it writes): the others still apply.
      const refused = batch.changes.map((mutate) => {
        try {
          mutate(secret);
          return undefined;
        } catch (e) {
          return e ?? new SwarmpayError('INTERNAL', 'a keystore change threw nothing');
        }
      });
      if (refused.every((e) => e !== undefined)) return refused;
      // What every open journal holds now is durable: recorded here, an older journal is refused from now on.
      if (this.journals.size > 0) recordHeads(secret, [...this.journals].map(([name, j]) => [name, j.head]));
      const t0 = performance.now();
      const written = await write(this.file, this.header, this.dataKey, secret, this.tpm, batch.checkpoint);
      this.header = written.header;
      this.checksum = written.checksum;
      this.secret = deepFreeze(secret);
      this.wroteAt = performance.now();
      this.writeMs = this.wroteAt - t0;
      this.wrote = fileId(this.file);
      return refused;
    } finally {
      lock.release();
    }
  }

  /** A key for one of the keystore's journals, bound to its name (HKDF of the data key). */
  subkey(name: string): Buffer {
    return Buffer.from(hkdfSync('sha256', this.dataKey, Buffer.alloc(0), `swarmpay keystore subkey/${name}`, 32));
  }

  /** The head of a journal as this keystore last recorded it; null if never recorded. */
  journalHead(name: string): JournalHead | null {
    const all = this.secret.journals;
    if (all === undefined) return null;
    try {
      const h = asObj(all, 'journals')[name];
      if (h === undefined) return null;
      const o = asObj(h, `journals.${name}`);
      return { gen: int(o, 'gen', name), records: int(o, 'records', name), bytes: int(o, 'bytes', name), hash: hex(o, 'hash', name, 32) };
    } catch (e) {
      if (e instanceof ShapeError) throw corrupt(this.file, e.message);
      throw e;
    }
  }

  /**
   * Opens a journal to append to (`keyName` names its subkey), checked against the head this
   * keystore recorded; from now on every keystore write records its head.
   */
  openJournal(file: string, name: string, keyName = name): { journal: Journal; records: Json[] } {
    const opened = Journal.open(file, name, this.subkey(keyName), this.journalHead(name));
    this.journals.set(name, opened.journal);
    return opened;
  }

  /** Reads a journal without changing it, checked against the head this keystore recorded. */
  readJournal(file: string, name: string, keyName = name): Json[] {
    return Journal.read(file, name, this.subkey(keyName), this.journalHead(name)).records;
  }

  /**
   * A clean close: records the journal's head in the keystore (a checkpoint: on a TPM the
   * counter advances, so that older copies of both are refused), then closes it.
   */
  async closeJournal(name: string): Promise<void> {
    const j = this.journals.get(name);
    if (j === undefined) return;
    try {
      await this.update(() => undefined, { checkpoint: true });
    } finally {
      this.journals.delete(name);
      j.close();
    }
  }

  /**
   * Replaces a damaged journal by what `choose` keeps of what can still be read (see
   * Journal.recover), and records the new generation's head, so that the damaged or an older
   * copy is refused from now on.
   */
  async recoverJournal(file: string, name: string, keyName: string, choose: (found: Salvaged[]) => Json[], keepAs: string): Promise<Salvaged[]> {
    const { found, head } = Journal.recover(file, name, this.subkey(keyName), this.journalHead(name)?.gen ?? 0, choose, keepAs);
    await this.update((s) => {
      recordHeads(s, [[name, head]]);
    }, { checkpoint: true });
    return found;
  }

}

/**
 * The keystore as a contract protocol (channel, escrow) sees it: its own tables and
 * journals, never the wallet's seed. `hidden` keys of the secret are left out of what it
 * reads and kept as they are by what it writes.
 */
export interface ContractStore {
  /** The secret less the hidden keys, as last read or written (its parts are frozen: replace, don't edit). */
  readonly secret: { readonly [k: string]: Json };
  update(mutate: (secret: { [k: string]: Json }) => void, opts?: { checkpoint?: boolean }): Promise<void>;
  refresh(): Promise<void>;
  subkey(name: string): Buffer;
  journalHead(name: string): JournalHead | null;
  openJournal(file: string, name: string, keyName?: string): { journal: Journal; records: Json[] };
  readJournal(file: string, name: string, keyName?: string): Json[];
  closeJournal(name: string): Promise<void>;
  recoverJournal(file: string, name: string, keyName: string, choose: (found: Salvaged[]) => Json[], keepAs: string): Promise<Salvaged[]>;
}

/** A session seen without some keys of its secret (src/wallet keeps the seed from the protocols so). */
export function storeWithout(session: KeystoreSession, hidden: readonly string[]): ContractStore {
  const without = (secret: { readonly [k: string]: Json }) => {
    const view = { ...secret };
    for (const k of hidden) delete view[k];
    return view;
  };
  return {
    get secret() {
      return without(session.secret);
    },
    update: (mutate, opts) =>
      session.update((secret) => {
        const view = without(secret);
        mutate(view);
        for (const k of hidden) if (k in view) throw new SwarmpayError('INTERNAL', `a contract protocol wrote the keystore's "${k}"`);
        for (const k of Object.keys(secret)) if (!hidden.includes(k) && !(k in view)) delete secret[k];
        Object.assign(secret, view);
      }, opts),
    refresh: () => session.refresh(),
    subkey: (name) => session.subkey(name),
    journalHead: (name) => session.journalHead(name),
    openJournal: (file, name, keyName) => session.openJournal(file, name, keyName),
    readJournal: (file, name, keyName) => session.readJournal(file, name, keyName),
    closeJournal: (name) => session.closeJournal(name),
    recoverJournal: (file, name, keyName, choose, keepAs) => session.recoverJournal(file, name, keyName, choose, keepAs),
  };
}

/**
 * Unlocks the keystore. With a TPM protector the file's counter is checked first, and with
 * `checkpoint` the counter then advances (a wallet open), so that any copy of the file
 * taken before this moment is refused from now on.
 */
export async function unlockKeystore(file: string, network: NetworkName, unlocker: Unlocker, opts: { checkpoint?: boolean } = {}): Promise<KeystoreSession> {
  const lock = acquireLock(`${file}.lock`, 'the keystore');
  try {
    const doc = readKeystore(file, network);
    const dataKey = await dataKeyOf(doc, unlocker);
    // The payload's tag authenticates the header, counter included: check it before trusting the counter.
    const secret = decryptPayload(file, doc, dataKey);
    const p = doc.header.protector;
    const tpm = p.type === 'tpm' ? await unlocker.tpm() : null;
    if (p.type === 'tpm' && tpm) await checkRollback(file, p, BigInt(doc.header.counter), tpm, dataKey);
    // A passphrase keystore has no counter: a checkpoint there writes nothing.
    const current = opts.checkpoint && tpm ? await write(file, doc.header, dataKey, secret, tpm, true) : { header: doc.header, checksum: doc.checksum };
    return new KeystoreSession(file, network, dataKey, current.header, secret, tpm, current.checksum);
  } finally {
    lock.release();
  }
}

export interface ProvisionResult {
  header: KeystoreHeader;
  migrated: boolean;
  srkPersisted: boolean;
}

/**
 * Moves the keystore under the TPM (from a passphrase), or with `force` reseals a TPM
 * keystore (new PCRs). The data key and the secrets stay the same, so nothing is lost;
 * the new file is written only after the TPM has shown it can unseal the new blob.
 */
export async function provisionTpm(file: string, network: NetworkName, unlocker: Unlocker, pcrs: number[], force: boolean): Promise<ProvisionResult> {
  const lock = acquireLock(`${file}.lock`, 'the keystore');
  try {
    const doc = readKeystore(file, network);
    const old = doc.header.protector;
    if (old.type === 'tpm' && !force) {
      throw new SwarmpayError('TPM_ALREADY_PROVISIONED', `the keystore is already sealed by a TPM (${old.provisionedOn})`, { hint: 'pass --force to seal it again, for example to other PCRs' });
    }
    const dataKey = await dataKeyOf(doc, unlocker);
    const secret = decryptPayload(file, doc, dataKey);
    const tpm = await unlocker.tpm();
    if (old.type === 'tpm') await checkRollback(file, old, BigInt(doc.header.counter), tpm, dataKey);

    const srk = await tpm.persistSrk();
    // Resealing on the TPM it was provisioned on: the same storage key, or nothing is sealed.
    const sealed = await tpm.seal(dataKey, pcrs, old.type === 'tpm' ? old.srkName : undefined);
    if (!(await tpm.unseal(sealed)).equals(dataKey)) throw new SwarmpayError('INTERNAL', 'the TPM unsealed something other than what it sealed');
    // A counter with the keystore's auth is kept; one from before counters had an auth is replaced.
    const keep = old.type === 'tpm' && old.counterAuth && (await tpm.counterExists(old.counterIndex));
    const auth = counterAuth({ counterAuth: true }, dataKey);
    const counterIndex = keep ? old.counterIndex : await tpm.defineCounter(auth);
    const header: KeystoreHeader = {
      ...doc.header,
      protector: { type: 'tpm', sealed: { public: sealed.public, private: sealed.private }, pcrs, srkName: sealed.srkName, counterIndex, counterAuth: true, provisionedOn: tpm.describe },
      counter: (await tpm.readCounter(counterIndex, auth, sealed.srkName)).toString(),
    };
    writeKeystore(file, header, encryptPayload(dataKey, header, secret));
    // The old counter goes once the file no longer names it (anyone could advance it).
    if (old.type === 'tpm' && !keep) await tpm.undefineCounter(old.counterIndex).catch(() => undefined);
    return { header, migrated: old.type === 'passphrase', srkPersisted: srk.persisted };
  } finally {
    lock.release();
  }
}

/** An unlocker that knows a passphrase and has no TPM (the demo's and library callers'). */
export function passphraseUnlocker(passphrase: string): Unlocker {
  return {
    passphrase: async () => passphrase,
    tpm: async () => {
      throw new SwarmpayError('TPM_UNAVAILABLE', 'this keystore is sealed by a TPM and no TPM was given', { hint: 'pass --tpm' });
    },
  };
}
