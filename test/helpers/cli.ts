/** Runs the built bin/swarmpay as a user would: a real process, real exit code, real streams. */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BIN = path.join(ROOT, 'bin', 'swarmpay');

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
  // The parsed --json document; its shape is what the test asserts.
  json: any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

if (!existsSync(path.join(ROOT, 'dist', 'cli', 'main.js'))) {
  throw new Error('dist/ is missing: run `npm run build` (npm test does it for you)');
}

function parse(stdout: string): unknown {
  try {
    return JSON.parse(stdout);
  } catch {
    return undefined;
  }
}

/** Runs `swarmpay --json --yes ARGS` (stdin closed: never a TTY). */
export function swarmpay(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(BIN, ['--json', '--yes', ...args], { env: { ...process.env, NO_COLOR: '1', ...env }, timeout: 120_000, maxBuffer: 256 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      resolve({ code, stdout, stderr, json: parse(stdout) });
    });
  });
}

/** Starts swarmpay without waiting, for tests that act while it runs. */
export function spawnSwarmpay(args: string[]): { child: ChildProcess; done: Promise<CliResult>; stdout(): string } {
  const child = spawn(BIN, ['--json', '--yes', ...args], { env: { ...process.env, NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return { child, stdout: () => stdout, done: new Promise((resolve) => child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr, json: parse(stdout) }))) };
}

/** Waits until `f` holds (polling every 20 ms), or fails after `ms`. */
export async function until(f: () => boolean, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (!f()) {
    if (Date.now() > end) throw new Error(`not so within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** How many `"acked":true` lines a `channel pay --json` has printed so far. */
export function ackedLines(stdout: string): number {
  return stdout.split('"acked":true').length - 1;
}

/** A hash of every file under `dir` (but the node's folder), to prove a failed command changed nothing. */
export function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    if (!existsSync(d)) return;
    for (const name of readdirSync(d)) {
      const p = path.join(d, name);
      if (name === 'node') continue;
      if (statSync(p).isDirectory()) walk(p);
      else out[path.relative(dir, p)] = createHash('sha256').update(readFileSync(p)).digest('hex');
    }
  };
  walk(dir);
  return out;
}
