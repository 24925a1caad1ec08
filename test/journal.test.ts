/** The keystore's append-only journals: group commits, torn tails, damage, a full disk. */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { Journal } from '../src/keystore/journal.js';
import { tempDir } from './helpers/tmp.js';
import { thrown } from './helpers/expect.js';


const key = randomBytes(32);

describe('journal', () => {
  let tmp: ReturnType<typeof tempDir>;
  let file: string;
  beforeEach(() => {
    tmp = tempDir();
    file = path.join(tmp.dir, 'channels', 'c1.journal');
  });
  afterEach(() => tmp.remove());

  test('records appended in batches come back in order after reopening', async () => {
    const { journal } = Journal.open(file, 'c1', key);
    journal.append([{ seq: 1 }, { seq: 2 }]);
    journal.append([{ seq: 3 }]);
    journal.close();
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const again = Journal.open(file, 'c1', key);
    expect(again.records).toEqual([{ seq: 1 }, { seq: 2 }, { seq: 3 }]);
    await again.journal.append([{ seq: 4 }]);
    again.journal.close();
    const last = Journal.open(file, 'c1', key);
    expect(last.records).toHaveLength(4);
    last.journal.close();
  });

  test('many appends in a row, none lost', async () => {
    const { journal } = Journal.open(file, 'c1', key);
    for (let i = 0; i < 50; i++) journal.append([{ i }]);
    journal.close();
    const again = Journal.open(file, 'c1', key);
    expect(again.records).toEqual(Array.from({ length: 50 }, (_, i) => ({ i })));
    again.journal.close();
  });

  test('a torn last record (a crash mid-append) is dropped; what came before stays', async () => {
    const { journal } = Journal.open(file, 'c1', key);
    journal.append([{ seq: 1 }, { seq: 2 }]);
    journal.close();
    const whole = readFileSync(file);
    writeFileSync(file, Buffer.concat([whole, whole.subarray(0, 10)]));
    const r = Journal.open(file, 'c1', key);
    expect(r.records).toEqual([{ seq: 1 }, { seq: 2 }]);
    r.journal.close();
    expect(readFileSync(file)).toEqual(whole);
  });

  test('a damaged record before the last is refused as corruption', async () => {
    const { journal } = Journal.open(file, 'c1', key);
    journal.append([{ seq: 1 }, { seq: 2 }]);
    journal.close();
    const buf = readFileSync(file);
    buf[10] ^= 1;
    writeFileSync(file, buf);
    expect(() => Journal.open(file, 'c1', key)).toThrow(expect.objectContaining({ code: 'KEYSTORE_CORRUPT' }));
  });

  test('records swapped, or a journal of another channel, are refused', async () => {
    const { journal } = Journal.open(file, 'c1', key);
    journal.append([{ seq: 1 }, { seq: 2 }, { seq: 3 }]);
    journal.close();
    const buf = readFileSync(file);
    const len = 4 + buf.readUInt32BE(0);
    writeFileSync(file, Buffer.concat([buf.subarray(len, 2 * len), buf.subarray(0, len), buf.subarray(2 * len)]));
    expect(() => Journal.open(file, 'c1', key)).toThrow(expect.objectContaining({ code: 'KEYSTORE_CORRUPT' }));
    writeFileSync(file, buf);
    expect(() => Journal.open(file, 'c2', key)).toThrow(expect.objectContaining({ code: 'KEYSTORE_CORRUPT' }));
  });

  test('a rewrite replaces the records; appends go on after them, and a reader sees the new journal', async () => {
    const { journal } = Journal.open(file, 'c1', key);
    for (let i = 0; i < 20; i++) journal.append([{ seq: i }]);
    const before = journal.bytes;
    journal.rewrite([{ newest: 19 }]);
    expect(journal.bytes).toBeLessThan(before / 10);
    expect(statSync(file).size).toBe(journal.bytes);
    expect(Journal.read(file, 'c1', key).records).toEqual([{ newest: 19 }]);
    journal.append([{ seq: 20 }]);
    journal.close();
    const again = Journal.open(file, 'c1', key);
    expect(again.records).toEqual([{ newest: 19 }, { seq: 20 }]);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    again.journal.close();
  });

  test('a rewrite that finds the disk full leaves the journal as it was, and appends go on', async () => {
    const mnt = path.join(tmp.dir, 'tiny');
    mkdirSync(mnt);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=16k', 'tmpfs', mnt]);
    const f = path.join(mnt, 'c1.journal');
    try {
      const { journal } = Journal.open(f, 'c1', key);
      journal.append([{ seq: 1 }]);
      const before = readFileSync(f);
      const err = thrown(() => journal.rewrite([{ big: 'x'.repeat(64 * 1024) }]));
      expect(err).toMatchObject({ code: 'IO_ERROR' });
      expect(readFileSync(f)).toEqual(before);
      expect(readdirSync(mnt).sort()).toEqual(['c1.journal', 'c1.journal.lock']);
      journal.append([{ seq: 2 }]);
      journal.close();
      const reopened = Journal.open(f, 'c1', key);
      expect(reopened.records).toEqual([{ seq: 1 }, { seq: 2 }]);
      reopened.journal.close();
    } finally {
      execFileSync('umount', [mnt]);
    }
  });

  test('a full disk fails the append, keeps every record before it, and the journal reopens', async () => {
    const mnt = path.join(tmp.dir, 'tiny');
    mkdirSync(mnt);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=16k', 'tmpfs', mnt]);
    const f = path.join(mnt, 'c1.journal');
    const { journal } = Journal.open(f, 'c1', key);
    try {
      journal.append([{ seq: 1 }]);
      const before = readFileSync(f);
      const err = thrown(() => journal.append([{ big: 'x'.repeat(64 * 1024) }]));
      expect(err).toMatchObject({ code: 'IO_ERROR' });
      expect((err as Error).message).toMatch(/disk is full/);
      // The journal stays failed: nothing more is accepted once a write was lost.
      expect(thrown(() => journal.append([{ seq: 2 }]))).toMatchObject({ code: 'IO_ERROR' });
      expect(readFileSync(f)).toEqual(before);
    } finally {
      journal.close();
    }
    try {
      const reopened = Journal.open(f, 'c1', key);
      expect(reopened.records).toEqual([{ seq: 1 }]);
      reopened.journal.close();
    } finally {
      execFileSync('umount', [mnt]);
    }
  });
});
