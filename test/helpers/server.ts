/** A `swarmpay … serve --listen` process (channel or escrow), as an operator runs one. */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { ROOT } from './cli.js';

export interface Server {
  child: ChildProcess;
  port: number;
  /** The static key the server prints, for --peer-key. */
  key: string;
}

/** Starts `swarmpay --json ARGS` and waits for its `{"listening", "peerKey"}` line. */
export async function startServer(args: string[], env: Record<string, string> = {}): Promise<Server> {
  const child = spawn(process.execPath, [path.join(ROOT, 'bin', 'swarmpay'), '--json', ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  child.stderr!.resume();
  const first = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).once('line', resolve);
    child.once('exit', (code) => reject(new Error(`${args.join(' ')} exited with ${code}`)));
  });
  const doc = JSON.parse(first) as { listening: string; peerKey: string };
  return { child, port: Number(doc.listening.split(':').pop()), key: doc.peerKey };
}

/** Resident memory of a process, in MiB. */
export function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]) / 1024;
}

/** Both cores kept busy (a race shows on a loaded machine); stop() ends the load. */
export function loadCpu(workers = 2): { stop(): void } {
  const kids = Array.from({ length: workers }, () => spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' }));
  return { stop: () => kids.forEach((k) => k.kill('SIGKILL')) };
}

/** Signals a child and resolves with its exit code once it is gone. */
export function stopChild(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve(child.exitCode);
    child.once('exit', (code) => resolve(code));
    child.kill(signal);
  });
}
