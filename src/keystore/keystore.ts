/**
 * The keystore: one file per network holding the wallet's secrets (and, later, channel
 * and escrow state), encrypted with a random 256-bit data key. The data key is wrapped by
 * a protector (today a passphrase through scrypt). A public part (the account xpub) is
 * readable without unlocking and authenticated as associated data whenever it is unlocked.
 *
 * A SHA-256 checksum over the whole document tells accidental damage (a truncated or
 * flipped byte) apart from a wrong passphrase; the AEAD tags catch deliberate tampering.
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { SwarmpayError, ioError } from '../errors.js';
import { NETWORK_NAMES, type NetworkName } from '../bitcoin/network.js';
import { writeFileAtomic } from '../util/atomic-file.js';
import { acquireLock } from '../util/file-lock.js';
import { canonicalJson, type Json } from '../util/canonical-json.js';
import { ShapeError, asObj, hex, int, obj, str, type Obj } from '../util/shape.js';
import { DEFAULT_SCRYPT, SCRYPT_N_MAX, SCRYPT_N_MIN, deriveKey, open, seal, type ScryptParams, type Sealed } from './crypto.js';

export const KEYSTORE_FORMAT = 'swarmpay-keystore';
export const KEYSTORE_VERSION = 1;
export const KEYSTORE_FILE = 'keystore.json';

export interface PassphraseProtector {
  type: 'passphrase';
  kdf: { name: 'scrypt' } & ScryptParams;
  wrappedKey: Sealed;
}

export interface KeystoreHeader {
  network: NetworkName;
  created: string;
  protector: PassphraseProtector;
  /** Non-secret data readable without unlocking (the wallet's account xpub). */
  public: { [k: string]: Json };
}

interface KeystoreFile {
  format: typeof KEYSTORE_FORMAT;
  version: number;
  header: KeystoreHeader;
  payload: Sealed;
  checksum: string;
}

export interface Unlocked {
  header: KeystoreHeader;
  secret: { [k: string]: Json };
}

export function keystorePath(networkDir: string): string {
  return path.join(networkDir, KEYSTORE_FILE);
}

const wrapAad = (network: NetworkName) => `${KEYSTORE_FORMAT}/${KEYSTORE_VERSION}/data-key/${network}`;
const headerAad = (h: KeystoreHeader) => canonicalJson(h as unknown as Json);
const checksumOf = (f: Omit<KeystoreFile, 'checksum'>) => createHash('sha256').update(canonicalJson(f as unknown as Json)).digest('hex');

function corrupt(file: string, why: string): SwarmpayError {
  return new SwarmpayError('KEYSTORE_CORRUPT', `the keystore ${file} is damaged: ${why}`, {
    hint: 'restore the file from a backup, or restore the wallet from its mnemonic into a new datadir (`swarmpay wallet create --restore`)',
  });
}

/** Reads and checks the file's structure, checksum and network; does not unlock. */
export function readKeystore(file: string, network: NetworkName): KeystoreFile {
  if (!existsSync(file)) {
    throw new SwarmpayError('WALLET_NOT_FOUND', `no wallet for ${network} in ${path.dirname(file)}`, {
      hint: 'create one with `swarmpay wallet create`, or pass the right --datadir / --network',
    });
  }
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw ioError('read', file, e);
  }
  let doc: KeystoreFile;
  try {
    doc = parseKeystore(JSON.parse(text));
  } catch (e) {
    if (e instanceof SyntaxError || e instanceof ShapeError) throw corrupt(file, e.message);
    throw e;
  }
  const { checksum, ...rest } = doc;
  if (checksumOf(rest) !== checksum) throw corrupt(file, 'its checksum does not match its contents');
  if (doc.header.network !== network) {
    throw new SwarmpayError('KEYSTORE_NETWORK', `the keystore ${file} belongs to ${doc.header.network}, not ${network}`, {
      hint: `run with --network ${doc.header.network}, or move the file back to that network's folder`,
    });
  }
  return doc;
}

function parseKeystore(v: unknown): KeystoreFile {
  const f = asObj(v, 'keystore');
  if (f.format !== KEYSTORE_FORMAT) throw new ShapeError(`format must be "${KEYSTORE_FORMAT}"`);
  if (f.version !== KEYSTORE_VERSION) throw new ShapeError(`version ${String(f.version)} is not supported (this swarmpay reads version ${KEYSTORE_VERSION})`);
  const h = obj(f, 'header', 'keystore');
  const p = obj(h, 'protector', 'header');
  if (p.type !== 'passphrase') throw new ShapeError(`header.protector.type "${String(p.type)}" is not supported`);
  const kdf = obj(p, 'kdf', 'protector');
  if (kdf.name !== 'scrypt') throw new ShapeError('protector.kdf.name must be "scrypt"');
  return {
    format: KEYSTORE_FORMAT,
    version: KEYSTORE_VERSION,
    header: {
      network: networkField(h),
      created: str(h, 'created', 'header'),
      protector: {
        type: 'passphrase',
        kdf: { name: 'scrypt', N: int(kdf, 'N', 'kdf', SCRYPT_N_MIN, SCRYPT_N_MAX), r: int(kdf, 'r', 'kdf', 1, 32), p: int(kdf, 'p', 'kdf', 1, 16), salt: hex(kdf, 'salt', 'kdf', 16) },
        wrappedKey: sealedAt(obj(p, 'wrappedKey', 'protector'), 'wrappedKey'),
      },
      public: obj(h, 'public', 'header') as { [k: string]: Json },
    },
    payload: sealedAt(obj(f, 'payload', 'keystore'), 'payload'),
    checksum: hex(f, 'checksum', 'keystore', 32),
  };
}

function networkField(h: Obj): NetworkName {
  const n = str(h, 'network', 'header');
  if (!(NETWORK_NAMES as readonly string[]).includes(n)) throw new ShapeError(`header.network "${n}" is not a network swarmpay knows`);
  return n as NetworkName;
}

function sealedAt(o: Obj, where: string): Sealed {
  return { iv: hex(o, 'iv', where, 12), ct: str(o, 'ct', where), tag: hex(o, 'tag', where, 16) };
}

/** Creates a new keystore; refuses to overwrite one, which may hold the only copy of a seed. */
export function createKeystore(
  file: string,
  network: NetworkName,
  passphrase: string,
  publicPart: { [k: string]: Json },
  secret: { [k: string]: Json },
  scrypt: Omit<ScryptParams, 'salt'> = DEFAULT_SCRYPT,
): KeystoreHeader {
  try {
    mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  } catch (e) {
    throw ioError('create', path.dirname(file), e);
  }
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
      public: publicPart,
    };
    const payload = seal(dataKey, Buffer.from(canonicalJson(secret), 'utf8'), headerAad(header));
    const body = { format: KEYSTORE_FORMAT, version: KEYSTORE_VERSION, header, payload } as const;
    writeFileAtomic(file, JSON.stringify({ ...body, checksum: checksumOf(body) }, null, 2) + '\n', 0o600);
    return header;
  } finally {
    lock.release();
  }
}

/** Unlocks with a passphrase: the data key is held only in memory, for this process. */
export function unlockKeystore(file: string, network: NetworkName, passphrase: string): Unlocked {
  const doc = readKeystore(file, network);
  const dataKey = open(deriveKey(passphrase, doc.header.protector.kdf), doc.header.protector.wrappedKey, wrapAad(network));
  if (dataKey === null) {
    throw new SwarmpayError('WRONG_PASSPHRASE', 'the passphrase does not unlock this keystore', {
      hint: 'check the passphrase (or --passphrase-file) and try again; nothing was changed',
    });
  }
  const plain = open(dataKey, doc.payload, headerAad(doc.header));
  if (plain === null) throw corrupt(file, 'its encrypted contents fail authentication (the file was altered)');
  try {
    return { header: doc.header, secret: asObj(JSON.parse(plain.toString('utf8')), 'secret') as { [k: string]: Json } };
  } catch (e) {
    throw corrupt(file, (e as Error).message);
  }
}
