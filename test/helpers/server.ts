/** A `swarmpay … serve --listen` process (channel or escrow), as an operator runs one. */
import { spawn, type ChildProcess } from 'node:child_process';
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
export async function startServer(args: string[]): Promise<Server> {
  const child = spawn(process.execPath, [path.join(ROOT, 'bin', 'swarmpay'), '--json', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stderr!.resume();
  const first = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).once('line', resolve);
    child.once('exit', (code) => reject(new Error(`${args.join(' ')} exited with ${code}`)));
  });
  const doc = JSON.parse(first) as { listening: string; peerKey: string };
  return { child, port: Number(doc.listening.split(':').pop()), key: doc.peerKey };
}

/** Signals a child and resolves with its exit code once it is gone. */
export function stopChild(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve(child.exitCode);
    child.once('exit', (code) => resolve(code));
    child.kill(signal);
  });
}
