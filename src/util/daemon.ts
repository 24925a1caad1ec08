/**
 * Daemons that swarmpay starts for a datadir (btcd, swtpm): spawned detached with their
 * output in a log, remembered in a JSON state file, recognised by their command line so
 * that a stale pid never makes us signal an unrelated process, and stopped politely.
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { SwarmpayError } from '../errors.js';
import { isAlive } from './process.js';

export function readState<T>(file: string): T | null {
  if (!existsSync(file)) return null;
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as T;
  } catch (e) {
    throw new SwarmpayError('INVALID_FILE', `${file} is not valid JSON: ${(e as Error).message}`, { hint: 'stop what still runs from this datadir and delete the file' });
  }
}

/** Whether `pid` is alive and its command line contains `marker` (where /proc exists to tell). */
export function isOurProcess(pid: number, marker: string): boolean {
  if (!isAlive(pid)) return false;
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(marker);
  } catch {
    return !existsSync('/proc/self');
  }
}

/**
 * Starts `binary` detached from us, its stdout and stderr appended to `logFile`; returns its pid.
 * Secrets go in files, never in `args`: every user can read a process's command line.
 */
export function spawnDaemon(binary: string, args: string[], logFile: string): { pid: number; exited: () => boolean } {
  // Owner only: the folder may be open to a group that shares the node's cookie.
  const out = openSync(logFile, 'a', 0o600);
  const child = spawn(binary, args, { detached: true, stdio: ['ignore', out, out] });
  closeSync(out);
  child.unref();
  if (child.pid === undefined) throw new SwarmpayError('NODE_START_FAILED', `could not start ${binary}`, { hint: `see ${logFile}` });
  return { pid: child.pid, exited: () => child.exitCode !== null || child.signalCode !== null || !isAlive(child.pid!) };
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves once the process is gone. */
export async function stopProcess(pid: number, graceMs = 20_000): Promise<void> {
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  const deadline = Date.now() + graceMs;
  while (isAlive(pid) && Date.now() < deadline) await sleep(50);
  if (isAlive(pid)) process.kill(pid, 'SIGKILL');
  while (isAlive(pid)) await sleep(20);
}

export function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/** The same port as last time where it is still free, so URLs others were given stay right. */
export async function stablePort(previous: number | undefined): Promise<number> {
  return previous !== undefined && (await portFree(previous)) ? previous : freePort();
}

export function logTail(file: string, lines = 3): string {
  try {
    return readFileSync(file, 'utf8').trim().split('\n').slice(-lines).join(' | ');
  } catch {
    return '(no log)';
  }
}
