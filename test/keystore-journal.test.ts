/**
 * The keystore's append-only journals: group commits, torn tails told apart from damage
 * (every bit of a small journal flipped), salvage, heads that refuse an older copy, new keys
 * at every rewrite, version 1 migrated, a full disk.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { sealBytes } from '../src/keystore/crypto.js';
import { Journal, type JournalHead } from '../src/keystore/journal.js';
import type { Json } from '../src/util/canonical-json.js';
import { tempDir } from './helpers/tmp.js';
import { thrown } from './helpers/expect.js';

/** Both copies of the header, before the first record. */
const HEADERS = 128;

/** Where each record starts and ends: its frame's length field says. */
function recordSpans(buf: Buffer): [number, number][] {
  const spans: [number, number][] = [];
  for (let off = HEADERS; off < buf.length; off += 8 + buf.readUInt32BE(off)) spans.push([off, off + 8 + buf.readUInt32BE(off)]);
  return spans;
}

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

  test('a torn tail at any length of the last record is dropped, the head covering what stays; zeros in its place are damage, not a tail', () => {
    const { journal } = Journal.open(file, 'c1', key);
    journal.append([{ seq: 1 }, { seq: 2 }]);
    const head = journal.head;
    journal.append([{ seq: 3 }]);
    journal.close();
    const whole = readFileSync(file);
    const [start] = recordSpans(whole)[2]!;
    for (let cut = start + 1; cut < whole.length; cut++) {
      writeFileSync(file, whole.subarray(0, cut));
      expect(Journal.read(file, 'c1', key, head).records).toEqual([{ seq: 1 }, { seq: 2 }]);
    }
    writeFileSync(file, whole.subarray(0, start + 5));
    const r = Journal.open(file, 'c1', key, head);
    expect(r.records).toEqual([{ seq: 1 }, { seq: 2 }]);
    expect(r.journal.head).toEqual(head);
    r.journal.close();
    // Zeros could stand for any number of acknowledged records: refused; salvage says where.
    writeFileSync(file, Buffer.concat([whole.subarray(0, start), Buffer.alloc(300)]));
    expect(thrown(() => Journal.read(file, 'c1', key)).code).toBe('KEYSTORE_CORRUPT');
    expect(Journal.salvage(file, 'c1', key).found).toContainEqual({ kind: 'damage', offset: start, bytes: 300, what: 'zeros from record 2 on' });
  });

  test('the length of record 3 of 10 made to point past the end is corruption, not a torn tail: nothing is cut', () => {
    const { journal } = Journal.open(file, 'c1', key);
    for (let i = 0; i < 10; i++) journal.append([{ seq: i }]);
    journal.close();
    const buf = readFileSync(file);
    const [start] = recordSpans(buf)[3]!;
    buf[start] ^= 0x80;
    writeFileSync(file, buf);
    const err = thrown(() => Journal.open(file, 'c1', key));
    expect(err).toMatchObject({ code: 'KEYSTORE_CORRUPT' });
    expect(err.message).toMatch(new RegExp(`record 3 at byte ${start} has a damaged frame`));
    expect(readFileSync(file)).toEqual(buf);
  });

  test('a flipped bit anywhere in a small journal: refused as damage or (in one header copy) read whole, never read short; salvage finds every other record', () => {
    const records: Json[] = [{ seq: 1 }, { seq: 2, ids: ['a', 'b'] }, { seq: 3 }, { seq: 4 }, { seq: 5, last: true }];
    const { journal } = Journal.open(file, 'c1', key);
    journal.append(records.slice(0, 2));
    journal.append(records.slice(2));
    journal.close();
    const clean = readFileSync(file);
    const spans = recordSpans(clean);
    for (let bit = 0; bit < clean.length * 8; bit++) {
      const buf = Buffer.from(clean);
      buf[bit >> 3] ^= 1 << (bit & 7);
      writeFileSync(file, buf);
      const byte = bit >> 3;
      if (byte < HEADERS) {
        // One copy of the header damaged: the other holds, and every record reads.
        expect(Journal.read(file, 'c1', key).records).toEqual(records);
      } else {
        const err = thrown(() => Journal.read(file, 'c1', key));
        if (err.code !== 'KEYSTORE_CORRUPT') throw new Error(`bit ${bit}: ${err.code}`);
      }
      const hit = spans.findIndex(([a, b]) => byte >= a && byte < b);
      const found = Journal.salvage(file, 'c1', key).found;
      const authentic = found.flatMap((f) => (f.kind === 'record' && f.authentic ? [f.value] : []));
      expect(authentic).toEqual(records.filter((_, i) => i !== hit));
      expect(found.some((f) => f.kind === 'damage')).toBe(true);
    }
  });

  test('both headers damaged: refused as damage (never taken for a version 1 journal of nothing); salvage still reads every record; one damaged copy is written again at open', () => {
    const { journal } = Journal.open(file, 'c1', key);
    for (let i = 0; i < 10; i++) journal.append([{ seq: i }]);
    journal.close();
    const clean = readFileSync(file);
    const both = Buffer.from(clean);
    randomBytes(8).copy(both, 0);
    randomBytes(8).copy(both, 64);
    writeFileSync(file, both);
    expect(thrown(() => Journal.open(file, 'c1', key))).toMatchObject({ code: 'KEYSTORE_CORRUPT', message: expect.stringMatching(/both headers are damaged/) });
    expect(existsSync(`${file}.v1`)).toBe(false);
    const { found } = Journal.salvage(file, 'c1', key);
    expect(found.flatMap((f) => (f.kind === 'record' && f.authentic ? [f.value] : []))).toEqual(Array.from({ length: 10 }, (_, i) => ({ seq: i })));
    const one = Buffer.from(clean);
    one[70] ^= 4;
    writeFileSync(file, one);
    const r = Journal.open(file, 'c1', key);
    expect(r.records).toHaveLength(10);
    r.journal.close();
    expect(readFileSync(file)).toEqual(clean);
  });

  test('salvage reads past a damaged frame to the records after it, and says where the damage is', () => {
    const { journal } = Journal.open(file, 'c1', key);
    for (let i = 0; i < 6; i++) journal.append([{ seq: i }]);
    journal.close();
    const buf = readFileSync(file);
    const [a, b] = recordSpans(buf)[2]!;
    buf.fill(0xee, a, a + 6);
    writeFileSync(file, buf);
    const { found } = Journal.salvage(file, 'c1', key);
    expect(found.flatMap((f) => (f.kind === 'record' ? [f.value] : []))).toEqual([{ seq: 0 }, { seq: 1 }, { seq: 3 }, { seq: 4 }, { seq: 5 }]);
    expect(found).toContainEqual({ kind: 'damage', offset: a, bytes: b - a, what: 'record 2 lost to a damaged frame' });
  });

  test('the head recorded in the keystore refuses an older copy, a shorter one, another generation, a missing or a version 1 journal', () => {
    const { journal } = Journal.open(file, 'c1', key);
    journal.append([{ seq: 1 }]);
    const old = readFileSync(file);
    journal.append([{ seq: 2 }, { seq: 3 }]);
    const head: JournalHead = journal.head;
    expect(head).toMatchObject({ gen: 1, records: 3, bytes: statSync(file).size });
    journal.close();
    const now = readFileSync(file);
    expect(Journal.read(file, 'c1', key, head).records).toHaveLength(3);
    writeFileSync(file, old);
    expect(thrown(() => Journal.open(file, 'c1', key, head))).toMatchObject({ code: 'ROLLBACK_DETECTED', message: expect.stringMatching(/holds 1 records; the keystore recorded 3/) });
    // Cut at a record's end: as whole as any file, and still refused.
    writeFileSync(file, now.subarray(0, recordSpans(now)[2]![0]));
    expect(thrown(() => Journal.read(file, 'c1', key, head)).code).toBe('ROLLBACK_DETECTED');
    writeFileSync(file, now);
    const { journal: j2 } = Journal.open(file, 'c1', key, head);
    j2.rewrite([{ seq: 3 }]);
    const newer = j2.head;
    j2.close();
    expect(newer.gen).toBe(2);
    writeFileSync(file, now);
    expect(thrown(() => Journal.read(file, 'c1', key, newer)).message).toMatch(/generation 1; the keystore recorded generation 2/);
    writeFileSync(file, Buffer.alloc(0));
    expect(thrown(() => Journal.read(file, 'c1', key, newer)).message).toMatch(/version 1 journal/);
    execFileSync('rm', [file]);
    expect(thrown(() => Journal.open(file, 'c1', key, newer)).message).toMatch(/is missing/);
  });

  test('a rewrite starts a new generation under a new key: the records of one cannot be spliced into the other', () => {
    const { journal } = Journal.open(file, 'c1', key);
    journal.append([{ seq: 1 }, { seq: 2 }]);
    const first = readFileSync(file);
    journal.rewrite([{ seq: 2 }]);
    const second = readFileSync(file);
    journal.close();
    expect(second.subarray(8, 32)).not.toEqual(first.subarray(8, 32));
    // The second file's header with the first file's records.
    writeFileSync(file, Buffer.concat([second.subarray(0, HEADERS), first.subarray(HEADERS)]));
    expect(thrown(() => Journal.read(file, 'c1', key)).code).toBe('KEYSTORE_CORRUPT');
  });

  test('a version 1 journal is read, rewritten as version 2, and kept beside it', () => {
    // Version 1: records framed by a length only, sealed under the journal key with the index in the associated data.
    const v1 = Buffer.concat(
      [{ seq: 1 }, { seq: 2 }].map((r, i) => {
        const s = sealBytes(key, Buffer.from(JSON.stringify(r)), `c1/${i}`);
        const len = Buffer.alloc(4);
        len.writeUInt32BE(12 + s.ct.length + 16);
        return Buffer.concat([len, s.iv, s.ct, s.tag]);
      }),
    );
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, v1);
    expect(Journal.read(file, 'c1', key).records).toEqual([{ seq: 1 }, { seq: 2 }]);
    const { journal, records } = Journal.open(file, 'c1', key);
    expect(records).toEqual([{ seq: 1 }, { seq: 2 }]);
    journal.append([{ seq: 3 }]);
    journal.close();
    expect(readFileSync(`${file}.v1`)).toEqual(v1);
    expect(readFileSync(file).subarray(0, 4).toString('latin1')).toBe('SWJ2');
    expect(Journal.read(file, 'c1', key).records).toEqual([{ seq: 1 }, { seq: 2 }, { seq: 3 }]);
  });

  test('records swapped, or a journal of another channel, are refused', async () => {
    const { journal } = Journal.open(file, 'c1', key);
    journal.append([{ seq: 1 }, { seq: 2 }, { seq: 3 }]);
    journal.close();
    const buf = readFileSync(file);
    const [[a, b], [, c]] = recordSpans(buf) as [[number, number], [number, number]];
    writeFileSync(file, Buffer.concat([buf.subarray(0, a), buf.subarray(b, c), buf.subarray(a, b), buf.subarray(c)]));
    expect(() => Journal.open(file, 'c1', key)).toThrow(expect.objectContaining({ code: 'KEYSTORE_CORRUPT' }));
    writeFileSync(file, buf);
    expect(() => Journal.open(file, 'c2', key)).toThrow(expect.objectContaining({ code: 'KEYSTORE_CORRUPT' }));
  });

  test('a rewrite replaces the records; appends go on after them, and a reader sees the new journal', async () => {
    const { journal } = Journal.open(file, 'c1', key);
    for (let i = 0; i < 60; i++) journal.append([{ seq: i }]);
    const before = journal.bytes;
    journal.rewrite([{ newest: 59 }]);
    expect(journal.bytes).toBeLessThan(before / 10);
    expect(statSync(file).size).toBe(journal.bytes);
    expect(Journal.read(file, 'c1', key).records).toEqual([{ newest: 59 }]);
    journal.append([{ seq: 60 }]);
    journal.close();
    const again = Journal.open(file, 'c1', key);
    expect(again.records).toEqual([{ newest: 59 }, { seq: 60 }]);
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
      expect(existsSync(`${f}.v1`)).toBe(false);
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
