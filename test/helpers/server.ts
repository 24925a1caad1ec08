/** A `swarmpay … serve --listen` process (channel or escrow), as an operator runs one. */
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
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
  const child = spawn(path.join(ROOT, 'bin', 'swarmpay'), ['--json', ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  child.stderr!.resume();
  const first = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).once('line', resolve);
    child.once('exit', (code) => reject(new Error(`${args.join(' ')} exited with ${code}`)));
  });
  const doc = JSON.parse(first) as { listening: string; peerKey: string };
  return { child, port: Number(doc.listening.split(':').pop()), key: doc.peerKey };
}


/**
 * Environment that lets liveHeapMb look inside a server: SIGUSR2 makes Node write a heap snapshot
 * into DIR (Node collects garbage first, so the snapshot holds only what is still reachable).
 */
export function heapSnapshotEnv(dir: string): Record<string, string> {
  return { NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --heapsnapshot-signal=SIGUSR2 --diagnostic-dir=${dir}`.trim() };
}

/**
 * What a server started with heapSnapshotEnv(DIR) still holds, in MiB, after a full collection.
 * RSS is the wrong measure of a leak: V8 keeps freed pages for a while and grows its heap by the
 * allocation rate, so RSS moved by 16 MiB on a machine where nothing was retained.
 */
export async function liveHeapMb(child: ChildProcess, dir: string): Promise<number> {
  const before = new Set(readdirSync(dir));
  child.kill('SIGUSR2');
  for (const started = Date.now(); Date.now() - started < 60_000; await new Promise((r) => setTimeout(r, 200))) {
    const file = readdirSync(dir).find((f) => f.endsWith('.heapsnapshot') && !before.has(f));
    if (!file) continue;
    let snap: { snapshot: { meta: { node_fields: string[] } }; nodes: number[] };
    try {
      snap = JSON.parse(readFileSync(path.join(dir, file), 'utf8')) as typeof snap;
    } catch {
      continue; // still being written
    }
    const fields = snap.snapshot.meta.node_fields;
    const self = fields.indexOf('self_size');
    let bytes = 0;
    for (let i = self; i < snap.nodes.length; i += fields.length) bytes += snap.nodes[i]!;
    return bytes / 2 ** 20;
  }
  throw new Error(`no heap snapshot from pid ${child.pid} in ${dir}`);
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
