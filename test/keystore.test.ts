/** The passphrase keystore: round trip, and every way a file can be wrong, refused without change. */
import { copyFileSync, mkdirSync, readFileSync, statSync, writeFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { createKeystore, keystorePath, provisionTpm, readKeystore, unlockKeystore, passphraseUnlocker } from '../src/keystore/keystore.js';
import { startTestTpm, type TestTpm } from './helpers/swtpm.js';
import { acquireLock, liveLockOwner } from '../src/util/file-lock.js';
import { SwarmpayError } from '../src/errors.js';
import { canonicalJson } from '../src/util/canonical-json.js';
import { createHash } from 'node:crypto';
import { tempDir } from './helpers/tmp.js';
import { thrown } from './helpers/expect.js';

const FAST = { N: 1 << 14, r: 8, p: 1 }; // the smallest N the reader accepts, to keep tests quick
const PASS = 'correct horse battery staple';
const secret = { wallet: { mnemonic: 'abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about' } };


async function unlockError(file: string, network: 'regtest' | 'mainnet', pass: string): Promise<SwarmpayError> {
  const e = await unlockKeystore(file, network, passphraseUnlocker(pass)).then(
    () => null,
    (err: unknown) => err,
  );
  if (e instanceof SwarmpayError) return e;
  throw new Error(`expected a SwarmpayError, got ${String(e)}`);
}

describe('keystore', () => {
  let tmp: ReturnType<typeof tempDir>;
  let file: string;
  beforeEach(() => {
    tmp = tempDir();
    file = keystorePath(path.join(tmp.dir, 'regtest'));
    createKeystore(file, 'regtest', PASS, { xpub: 'tpubX' }, secret, FAST);
  });
  afterEach(() => tmp.remove());

  test('round trip: the right passphrase unlocks the secret; the public part reads without it', async () => {
    expect((await unlockKeystore(file, 'regtest', passphraseUnlocker(PASS))).secret).toEqual(secret);
    expect(readKeystore(file, 'regtest').header.public).toEqual({ xpub: 'tpubX' });
    expect(statSync(file).mode & 0o777).toBe(0o600);
  });

  test('the secret is not in the file in clear', () => {
    expect(readFileSync(file, 'utf8')).not.toContain('abandon');
  });

  test('an existing keystore is never overwritten', () => {
    const before = readFileSync(file);
    expect(thrown(() => createKeystore(file, 'regtest', PASS, {}, {}, FAST)).code).toBe('KEYSTORE_EXISTS');
    expect(readFileSync(file)).toEqual(before);
  });

  test('a wrong passphrase is WRONG_PASSPHRASE', async () => {
    expect((await unlockError(file, 'regtest', 'not the passphrase')).code).toBe('WRONG_PASSPHRASE');
  });

  test('a truncated file is KEYSTORE_CORRUPT', async () => {
    const text = readFileSync(file, 'utf8');
    writeFileSync(file, text.slice(0, text.length / 2));
    expect((await unlockError(file, 'regtest', PASS)).code).toBe('KEYSTORE_CORRUPT');
  });

  test('a flipped byte anywhere is KEYSTORE_CORRUPT, not a wrong passphrase', async () => {
    const bytes = readFileSync(file);
    const text = bytes.toString('utf8');
    // Flip a byte inside each sealed field: the wrapped key, the payload and the public part.
    for (const needle of ['"ct": "', '"tag": "', '"xpub": "']) {
      const at = text.lastIndexOf(needle) + needle.length + 2;
      const copy = Buffer.from(bytes);
      copy[at] = copy[at] === 0x41 ? 0x42 : 0x41;
      writeFileSync(file, copy);
      expect((await unlockError(file, 'regtest', PASS)).code).toBe('KEYSTORE_CORRUPT');
    }
  });

  test('a file whose checksum was recomputed after tampering still fails authentication', async () => {
    const doc = JSON.parse(readFileSync(file, 'utf8'));
    doc.header.public.xpub = 'tpubATTACKER';
    // An attacker can recompute the checksum: it only guards against accidents.
    const { checksum: _drop, ...body } = doc;
    doc.checksum = createHash('sha256').update(canonicalJson(body)).digest('hex');
    writeFileSync(file, JSON.stringify(doc));
    expect(readKeystore(file, 'regtest').header.public.xpub).toBe('tpubATTACKER'); // readable…
    expect((await unlockError(file, 'regtest', PASS)).code).toBe('KEYSTORE_CORRUPT'); // …but never trusted
  });

  test('a keystore of another network is KEYSTORE_NETWORK', async () => {
    const other = keystorePath(path.join(tmp.dir, 'mainnet'));
    mkdirSync(path.dirname(other));
    copyFileSync(file, other);
    expect((await unlockError(other, 'mainnet', PASS)).code).toBe('KEYSTORE_NETWORK');
  });

  test('no file is WALLET_NOT_FOUND', () => {
    expect(thrown(() => readKeystore(path.join(tmp.dir, 'nope.json'), 'regtest')).code).toBe('WALLET_NOT_FOUND');
  });

  test('scrypt parameters out of bounds are refused before any work', async () => {
    const doc = JSON.parse(readFileSync(file, 'utf8'));
    doc.header.protector.kdf.N = 1 << 30;
    writeFileSync(file, JSON.stringify(doc));
    expect((await unlockError(file, 'regtest', PASS)).code).toBe('KEYSTORE_CORRUPT');
  });

  test('a lock held by a live process is KEYSTORE_BUSY; a stale one is taken over', () => {
    const lockFile = `${file}.lock`;
    writeFileSync(lockFile, String(process.ppid)); // our parent is alive
    expect(thrown(() => acquireLock(lockFile, 'the keystore')).code).toBe('KEYSTORE_BUSY');
    writeFileSync(lockFile, '999999999'); // no such pid
    const lock = acquireLock(lockFile, 'the keystore');
    expect(liveLockOwner(lockFile)).toBe(process.pid);
    lock.release();
    expect(existsSync(lockFile)).toBe(false);
  });

  test('two processes updating one keystore: each change lands on the other\'s, none is lost', async () => {
    const a = await unlockKeystore(file, 'regtest', passphraseUnlocker(PASS));
    const b = await unlockKeystore(file, 'regtest', passphraseUnlocker(PASS));
    await a.update((s) => {
      s.fromA = 1;
    });
    await b.update((s) => {
      s.fromB = 2;
    });
    const now = await unlockKeystore(file, 'regtest', passphraseUnlocker(PASS));
    expect(now.secret).toMatchObject({ ...secret, fromA: 1, fromB: 2 });
    expect(b.secret).toMatchObject({ fromA: 1, fromB: 2 });
  });
});

describe('a TPM keystore updated by many tasks of one process at once (as `channel serve` does)', () => {
  let tmp: ReturnType<typeof tempDir>;
  let tpm: TestTpm;
  let file: string;
  beforeAll(async () => {
    tmp = tempDir();
    tpm = await startTestTpm();
    file = keystorePath(path.join(tmp.dir, 'regtest'));
    createKeystore(file, 'regtest', PASS, { xpub: 'tpubX' }, secret, FAST);
  });
  afterAll(async () => {
    await tpm?.stop();
    tmp?.remove();
  });

  test('every checkpoint lands, in turn: the counter and the file agree after, and nothing is lost', async () => {
    const client = await tpm.open();
    try {
      const unlocker = { passphrase: async () => PASS, tpm: async () => client };
      await provisionTpm(file, 'regtest', unlocker, [], false);
      const a = await unlockKeystore(file, 'regtest', unlocker);
      const b = await unlockKeystore(file, 'regtest', unlocker);
      await Promise.all(Array.from({ length: 12 }, (_, i) => (i % 2 ? a : b).update((s) => {
        s[`task${i}`] = i;
      }, { checkpoint: i % 3 !== 0 })));
      // A second writer in the gap between a file write and its counter increment would leave the TPM ahead: ROLLBACK_DETECTED.
      const now = await unlockKeystore(file, 'regtest', unlocker);
      for (let i = 0; i < 12; i++) expect(now.secret[`task${i}`]).toBe(i);
      const counterIndex = (now.header.protector as { counterIndex: number }).counterIndex;
      expect(BigInt(now.header.counter)).toBe(await client.peekCounter(counterIndex));
      // Updates queued together are written together: fifty checkpoints at once, one write and one counter step;
      // a change that refuses (throws) leaves the others to apply.
      const before = await client.peekCounter(counterIndex);
      const outcomes = await Promise.allSettled(Array.from({ length: 50 }, (_, i) => now.update((s) => {
        if (i === 7) throw new Error('refused');
        s[`burst${i}`] = i;
      }, { checkpoint: true })));
      expect(outcomes.filter((o) => o.status === 'rejected').map((o) => ((o as PromiseRejectedResult).reason as Error).message)).toEqual(['refused']);
      expect(await client.peekCounter(counterIndex)).toBe(before + 1n);
      const after = await unlockKeystore(file, 'regtest', unlocker);
      expect(Object.keys(after.secret).filter((k) => k.startsWith('burst'))).toHaveLength(49);
    } finally {
      await client.close();
    }
  });
});
