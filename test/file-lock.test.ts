/**
 * src/util/file-lock.ts: one holder at a time, across processes. A lock file is created
 * with its owner's pid already in it, so no process ever reads one without an owner and
 * takes it for stale (two `wallet send` at once once both held one coin's lock that way,
 * and the second was refused by the node as a replacement).
 */
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { acquireLock, lockOwner } from '../src/util/file-lock.js';
import { ROOT } from './helpers/cli.js';
import { loadCpu } from './helpers/server.js';
import { tempDir } from './helpers/tmp.js';

let tmp: ReturnType<typeof tempDir>;
beforeEach(() => {
  tmp = tempDir();
});
afterEach(() => tmp.remove());

test('a lock file without an owner yet (another process writing it) is busy, not stale; one left so for long is stale', () => {
  const file = path.join(tmp.dir, 'x.lock');
  writeFileSync(file, '');
  expect(() => acquireLock(file, 'x')).toThrow(expect.objectContaining({ code: 'KEYSTORE_BUSY' }));
  expect(existsSync(file)).toBe(true);
  const old = (Date.now() - 60_000) / 1000;
  utimesSync(file, old, old);
  const lock = acquireLock(file, 'x');
  expect(lockOwner(file)).toBe(process.pid);
  lock.release();
  expect(readdirSync(tmp.dir)).toEqual([]);
});

test('a lock whose owner died is taken over; a live owner\'s is not', () => {
  const file = path.join(tmp.dir, 'y.lock');
  writeFileSync(file, '999999999');
  acquireLock(file, 'y').release();
  writeFileSync(file, String(process.ppid));
  expect(() => acquireLock(file, 'y')).toThrow(expect.objectContaining({ code: 'KEYSTORE_BUSY' }));
});

/** A process that takes the lock over and over for `ms`, each time checking it is alone inside. */
const contender = (file: string, inside: string, ms: number) => `
  import { acquireLock } from ${JSON.stringify(path.join(ROOT, 'dist', 'util', 'file-lock.js'))};
  import { openSync, closeSync, rmSync } from 'node:fs';
  let held = 0, overlaps = 0;
  const until = Date.now() + ${ms};
  while (Date.now() < until) {
    let lock;
    try { lock = acquireLock(${JSON.stringify(file)}, 'z'); } catch (e) { if (e.code === 'KEYSTORE_BUSY') continue; throw e; }
    held++;
    try { closeSync(openSync(${JSON.stringify(inside)}, 'wx')); } catch { overlaps++; }
    for (let i = 0; i < 2000; i++) Math.sqrt(i);
    rmSync(${JSON.stringify(inside)}, { force: true });
    lock.release();
  }
  console.log(JSON.stringify({ held, overlaps }));
`;

test('six processes taking one lock over and over, on a loaded CPU: never two inside at once', async () => {
  const file = path.join(tmp.dir, 'z.lock');
  const inside = path.join(tmp.dir, 'inside');
  const load = loadCpu();
  try {
    const runs = await Promise.all(
      Array.from({ length: 6 }, () => new Promise<{ held: number; overlaps: number }>((resolve, reject) => {
        const child = spawn(process.execPath, ['--input-type=module', '-e', contender(file, inside, 2000)], { stdio: ['ignore', 'pipe', 'inherit'] });
        let out = '';
        child.stdout.on('data', (d: Buffer) => (out += d.toString()));
        child.on('close', (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`contender exited ${code}`))));
      })),
    );
    expect(runs.reduce((a, r) => a + r.held, 0)).toBeGreaterThan(20);
    expect(runs.map((r) => r.overlaps)).toEqual([0, 0, 0, 0, 0, 0]);
  } finally {
    load.stop();
  }
}, 30_000);
