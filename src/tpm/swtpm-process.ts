/**
 * The software TPM that `swarmpay node start` runs on regtest: swtpm on loopback, its
 * state under <datadir>/regtest/tpm so that the "device" keeps its keys across restarts.
 */
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { SwarmpayError, ioError } from '../errors.js';
import { writeFileAtomic } from '../util/atomic-file.js';
import { freePort, isOurProcess, logTail, portFree, readState, spawnDaemon, stopProcess } from '../util/daemon.js';
import { SwtpmTransport } from './transport.js';

export interface SwtpmState {
  pid: number;
  host: '127.0.0.1';
  port: number;
  ctrlPort: number;
}

const STATE_FILE = 'tpm.json';

export function swtpmDir(networkDir: string): string {
  return path.join(networkDir, 'tpm');
}

/** A port p with p + 1 free too: the previous one where both still are. */
async function pairedPort(previous: number | undefined): Promise<number> {
  if (previous !== undefined && (await portFree(previous)) && (await portFree(previous + 1))) return previous;
  for (let attempt = 0; attempt < 50; attempt++) {
    const p = await freePort();
    if (p < 65535 && (await portFree(p + 1))) return p;
  }
  throw new SwarmpayError('TPM_UNAVAILABLE', 'found no two free neighbouring ports on 127.0.0.1 for swtpm', { hint: 'free some ports and try again' });
}

export function findSwtpm(): string {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    const p = path.join(dir, 'swtpm');
    if (dir && existsSync(p)) return p;
  }
  throw new SwarmpayError('TPM_UNAVAILABLE', 'swtpm (the software TPM) is not installed', { hint: 'run `npm run setup`, or `apt-get install swtpm swtpm-tools`' });
}

/** The swtpm running for this folder, or null. */
export function runningSwtpm(dir: string): SwtpmState | null {
  const state = readState<SwtpmState>(path.join(dir, STATE_FILE));
  return state && isOurProcess(state.pid, path.join(dir, 'state')) ? state : null;
}

export async function startSwtpm(dir: string, timeoutMs = 20_000): Promise<{ state: SwtpmState; alreadyRunning: boolean }> {
  const running = runningSwtpm(dir);
  if (running) return { state: running, alreadyRunning: true };
  const binary = findSwtpm();
  const previous = readState<SwtpmState>(path.join(dir, STATE_FILE));
  try {
    mkdirSync(path.join(dir, 'state'), { recursive: true, mode: 0o700 });
  } catch (e) {
    throw ioError('create', dir, e);
  }
  // tpm2-tools' swtpm TCTI expects the control channel at the data port + 1.
  const port = await pairedPort(previous?.port);
  const ctrlPort = port + 1;
  const logFile = path.join(dir, 'swtpm.log');
  const { pid, exited } = spawnDaemon(
    binary,
    [
      'socket', '--tpm2',
      '--tpmstate', `dir=${path.join(dir, 'state')}`,
      '--server', `type=tcp,port=${port},bindaddr=127.0.0.1`,
      '--ctrl', `type=tcp,port=${ctrlPort},bindaddr=127.0.0.1`,
      // Powered on and started (TPM2_Startup(CLEAR)) at once, like a TPM after boot.
      '--flags', 'not-need-init,startup-clear',
    ],
    logFile,
  );
  const state: SwtpmState = { pid, host: '127.0.0.1', port, ctrlPort };
  writeFileAtomic(path.join(dir, STATE_FILE), JSON.stringify(state, null, 2) + '\n', 0o600);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (exited()) throw new SwarmpayError('TPM_UNAVAILABLE', `swtpm exited during start-up: ${logTail(logFile)}`, { hint: `see ${logFile}` });
    try {
      const t = await SwtpmTransport.connect(state.host, state.port);
      await t.close();
      return { state, alreadyRunning: false };
    } catch (e) {
      if (Date.now() > deadline) {
        await stopProcess(pid);
        throw new SwarmpayError('TPM_UNAVAILABLE', `swtpm did not accept connections within ${timeoutMs / 1000} s`, { hint: `see ${logFile}`, cause: e });
      }
      await sleep(50);
    }
  }
}

export async function stopSwtpm(dir: string): Promise<{ wasRunning: boolean }> {
  const state = runningSwtpm(dir);
  if (!state) return { wasRunning: false };
  await stopProcess(state.pid);
  return { wasRunning: true };
}
