/**
 * The keystore file: a JSON document with a header (network, protector, the non-secret
 * public part, the anti-rollback counter it was written at), the payload sealed with the
 * data key, and a checksum. Reading checks structure, checksum and network; nothing here
 * unlocks anything.
 *
 * The SHA-256 checksum tells accidental damage (a truncated file, a flipped byte) apart
 * from a wrong passphrase or TPM; the AEAD tags catch deliberate tampering.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { SwarmpayError, ioError } from '../errors.js';
import { NETWORK_NAMES, type NetworkName } from '../bitcoin/network.js';
import { writeFileAtomic } from '../util/atomic-file.js';
import { canonicalJson, type Json } from '../util/canonical-json.js';
import { ShapeError, asObj, hex, int, obj, str, type Obj } from '../util/shape.js';
import { SCRYPT_N_MAX, SCRYPT_N_MIN, type ScryptParams, type Sealed } from './crypto.js';

export const KEYSTORE_FORMAT = 'swarmpay-keystore';
export const KEYSTORE_VERSION = 1;
const KEYSTORE_FILE = 'keystore.json';

interface PassphraseProtector {
  type: 'passphrase';
  kdf: { name: 'scrypt' } & ScryptParams;
  wrappedKey: Sealed;
}

export interface TpmProtector {
  type: 'tpm';
  /** The sealed data object (TPM2B_PUBLIC and TPM2B_PRIVATE contents, hex) under the SRK. */
  sealed: { public: string; private: string };
  /** PCRs of the SHA-256 bank the data key is bound to; empty for none. */
  pcrs: number[];
  /** Name of the SRK it was sealed under: another TPM has another SRK. */
  srkName: string;
  /** NV index of the monotonic counter that refuses rolled-back files. */
  counterIndex: number;
  /** Whether the counter's authValue derives from the data key (absent: defined before it did; its auth is empty). */
  counterAuth?: true;
  /** Where it was provisioned (for messages only, e.g. "swtpm 127.0.0.1:2321"). */
  provisionedOn: string;
}

type Protector = PassphraseProtector | TpmProtector;

export interface KeystoreHeader {
  network: NetworkName;
  created: string;
  protector: Protector;
  /** The TPM counter value this file was written at (decimal); "0" for passphrase keystores. */
  counter: string;
  /** Non-secret data readable without unlocking (the wallet's account xpub). */
  public: { [k: string]: Json };
}

export interface KeystoreFile {
  format: typeof KEYSTORE_FORMAT;
  version: number;
  header: KeystoreHeader;
  payload: Sealed;
  checksum: string;
}

export function keystorePath(networkDir: string): string {
  return path.join(networkDir, KEYSTORE_FILE);
}

// The header and file are JSON through and through (read by the shape checks below), which TypeScript cannot see of an interface.
export const headerAad = (h: KeystoreHeader) => canonicalJson(h as unknown as Json);
const checksumOf = (f: Omit<KeystoreFile, 'checksum'>) => createHash('sha256').update(canonicalJson(f as unknown as Json)).digest('hex');

export function corrupt(file: string, why: string): SwarmpayError {
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

/** Writes a keystore atomically (the caller holds the lock); returns its checksum. */
export function writeKeystore(file: string, header: KeystoreHeader, payload: Sealed): string {
  const body = { format: KEYSTORE_FORMAT, version: KEYSTORE_VERSION, header, payload } as const;
  const checksum = checksumOf(body);
  writeFileAtomic(file, JSON.stringify({ ...body, checksum }, null, 2) + '\n', 0o600);
  return checksum;
}

function parseKeystore(v: unknown): KeystoreFile {
  const f = asObj(v, 'keystore');
  if (f.format !== KEYSTORE_FORMAT) throw new ShapeError(`format must be "${KEYSTORE_FORMAT}"`);
  if (f.version !== KEYSTORE_VERSION) throw new ShapeError(`version ${String(f.version)} is not supported (this swarmpay reads version ${KEYSTORE_VERSION})`);
  const h = obj(f, 'header', 'keystore');
  const counter = str(h, 'counter', 'header');
  if (!/^(0|[1-9][0-9]{0,19})$/.test(counter)) throw new ShapeError('header.counter must be a decimal number');
  return {
    format: KEYSTORE_FORMAT,
    version: KEYSTORE_VERSION,
    header: {
      network: networkField(h),
      created: str(h, 'created', 'header'),
      protector: parseProtector(obj(h, 'protector', 'header')),
      counter,
      public: obj(h, 'public', 'header') as { [k: string]: Json },
    },
    payload: sealedAt(obj(f, 'payload', 'keystore'), 'payload'),
    checksum: hex(f, 'checksum', 'keystore', 32),
  };
}

function parseProtector(p: Obj): Protector {
  if (p.type === 'passphrase') {
    const kdf = obj(p, 'kdf', 'protector');
    if (kdf.name !== 'scrypt') throw new ShapeError('protector.kdf.name must be "scrypt"');
    return {
      type: 'passphrase',
      kdf: { name: 'scrypt', N: int(kdf, 'N', 'kdf', SCRYPT_N_MIN, SCRYPT_N_MAX), r: int(kdf, 'r', 'kdf', 1, 32), p: int(kdf, 'p', 'kdf', 1, 16), salt: hex(kdf, 'salt', 'kdf', 16) },
      wrappedKey: sealedAt(obj(p, 'wrappedKey', 'protector'), 'wrappedKey'),
    };
  }
  if (p.type === 'tpm') {
    const sealed = obj(p, 'sealed', 'protector');
    const pcrs = p.pcrs;
    if (!Array.isArray(pcrs) || !pcrs.every((x) => Number.isInteger(x) && x >= 0 && x < 24)) throw new ShapeError('protector.pcrs must be a list of PCRs 0-23');
    return {
      type: 'tpm',
      sealed: { public: hex(sealed, 'public', 'sealed'), private: hex(sealed, 'private', 'sealed') },
      pcrs: pcrs as number[],
      srkName: hex(p, 'srkName', 'protector'),
      counterIndex: int(p, 'counterIndex', 'protector', 0x01000000, 0x01ffffff),
      ...(p.counterAuth === true ? { counterAuth: true as const } : {}),
      provisionedOn: str(p, 'provisionedOn', 'protector'),
    };
  }
  throw new ShapeError(`header.protector.type "${String(p.type)}" is not supported`);
}

function networkField(h: Obj): NetworkName {
  const n = str(h, 'network', 'header');
  if (!(NETWORK_NAMES as readonly string[]).includes(n)) throw new ShapeError(`header.network "${n}" is not a network swarmpay knows`);
  return n as NetworkName;
}

function sealedAt(o: Obj, where: string): Sealed {
  return { iv: hex(o, 'iv', where, 12), ct: str(o, 'ct', where), tag: hex(o, 'tag', where, 16) };
}
