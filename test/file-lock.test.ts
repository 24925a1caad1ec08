/**
 * src/util/file-lock.ts: one holder at a time, across processes. A lock file is created
 * with its owner's pid already in it, so no process ever reads one without an owner and
 * takes it for stale (two `wallet send` at once once both held one coin's lock that way,
 * and the second was refused by the node as a replacement).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { acquireLock, liveLockOwner } from '../src/util/file-lock.js';
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
  expect(liveLockOwner(file)).toBe(process.pid);
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

describe('a lock names its owner by pid, boot and start, so a reboot or a reused pid frees it', () => {
  const proc = (pid: number) => {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return { boot: readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim(), start: stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]! };
  };
  // A live process that is not ours: the lock's owner, as another swarmpay command would be.
  let sleeper: ChildProcess;
  beforeEach(() => {
    sleeper = spawn('sleep', ['60'], { stdio: 'ignore' });
  });
  afterEach(() => sleeper.kill());

  test('the lock this process writes names it so', () => {
    const file = path.join(tmp.dir, 'own.lock');
    const lock = acquireLock(file, 'own');
    const { boot, start } = proc(process.pid);
    expect(readFileSync(file, 'utf8')).toBe(`${process.pid} ${boot} ${start}`);
    lock.release();
  });

  test("a live owner, as it wrote itself, holds the lock; an older version's pid alone still does", () => {
    const file = path.join(tmp.dir, 'held.lock');
    const { boot, start } = proc(sleeper.pid!);
    for (const text of [`${sleeper.pid} ${boot} ${start}`, String(sleeper.pid)]) {
      writeFileSync(file, text);
      expect(() => acquireLock(file, 'held')).toThrow(expect.objectContaining({ code: 'KEYSTORE_BUSY', message: expect.stringContaining(`pid ${sleeper.pid}`) }));
      expect(liveLockOwner(file)).toBe(sleeper.pid);
    }
  });

  test('a lock from before a reboot, or from a crashed owner whose pid another process now has, is taken over', () => {
    const file = path.join(tmp.dir, 'stale.lock');
    const { boot, start } = proc(sleeper.pid!);
    const otherBoot = boot.replace(/^./, (c) => (c === '0' ? '1' : '0'));
    for (const text of [`${sleeper.pid} ${otherBoot} ${start}`, `${sleeper.pid} ${boot} ${Number(start) - 1}`]) {
      writeFileSync(file, text);
      expect(liveLockOwner(file)).toBeNull();
      acquireLock(file, 'stale').release();
      expect(existsSync(file)).toBe(false);
    }
  });
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
