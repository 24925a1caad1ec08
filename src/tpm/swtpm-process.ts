/**
 * The software TPM that `swarmpay node start` runs on regtest: swtpm on loopback, its
 * state under <datadir>/regtest/tpm so that the "device" keeps its keys across restarts.
 *
 * When the state is first made, swtpm_setup "manufactures" the TPM as a vendor would: it
 * creates the endorsement keys and has swtpm_localca certify them, a local CA of this
 * folder (<dir>/ca) standing in for the manufacturer's. The EK certificate goes into NV
 * where the TCG EK Credential Profile puts it; the CA's certificates into <dir>/ek-ca.pem,
 * which a verifier passes to `tpm enroll --tpm-ca`.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { SwarmpayError, ioError } from '../errors.js';
import { writeFileAtomic } from '../util/atomic-file.js';
import { freePort, isOurProcess, logTail, portFree, readState, spawnDaemon, stopProcess } from '../util/daemon.js';
import { EvictControl, GetCapability } from './commands.js';
import { TPM_CAP, TPM_RH } from './constants.js';
import { authorize, execute, passwordSession } from './execute.js';
import { TpmError } from './rc.js';
import { SwtpmTransport } from './transport.js';

export interface SwtpmState {
  pid: number;
  host: '127.0.0.1';
  port: number;
  ctrlPort: number;
  /**
   * The PEM file of the local CA that certified this TPM's EK (its issuing certificate and
   * root), for `tpm enroll --tpm-ca`; null when the TPM has no EK certificate (its state was
   * made before swarmpay manufactured software TPMs, or swtpm_setup is not installed).
   */
  ekCa: string | null;
}

const STATE_FILE = 'tpm.json';
/** The local CA's certificates, issuing CA first, then its root. */
const EK_CA_FILE = 'ek-ca.pem';
/** What libtpms keeps its permanent state in: there, the TPM exists already. */
const PERMANENT_STATE = 'tpm2-00.permall';
/** Where swtpm_setup leaves the EKs it creates (TCG's handles for them); swarmpay recreates EKs from their templates instead. */
const SETUP_PERSISTENT_EKS = [0x81010001, 0x81010016];

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

function findTool(name: string): string | null {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    const p = path.join(dir, name);
    if (dir && existsSync(p)) return p;
  }
  return null;
}

function findSwtpm(): string {
  const p = findTool('swtpm');
  if (p !== null) return p;
  throw new SwarmpayError('TPM_UNAVAILABLE', 'swtpm (the software TPM) is not installed', { hint: 'run `npm run setup`, or `apt-get install swtpm swtpm-tools`' });
}

/** The swtpm running for this folder, or null. */
export function runningSwtpm(dir: string): SwtpmState | null {
  const state = readState<SwtpmState>(path.join(dir, STATE_FILE));
  return state && isOurProcess(state.pid, path.join(dir, 'state')) ? { ...state, ekCa: ekCaFile(dir) } : null;
}

/** The local CA's PEM file if this TPM was manufactured with an EK certificate, else null. */
function ekCaFile(dir: string): string | null {
  const f = path.join(dir, EK_CA_FILE);
  return existsSync(f) ? f : null;
}

/**
 * Makes the TPM's state with swtpm_setup: the RSA 2048 EK (TCG template L-1) and its
 * certificate at NV 0x01c00002, signed by the local CA under <dir>/ca (swtpm_localca
 * creates the CA on first use). swtpm 0.7 certifies no ECC P-256 EK (its ECC EK is P-384,
 * high range), so RSA 2048, the TCG default, is the EK swarmpay uses on it. PCR banks are
 * left as libtpms makes them. The state is made aside and moved in place once whole.
 * Returns false, and leaves the state to swtpm, where swtpm_setup is not installed.
 */
async function manufacture(dir: string): Promise<boolean> {
  const stateDir = path.join(dir, 'state');
  if (existsSync(path.join(stateDir, PERMANENT_STATE))) return false;
  const setup = findTool('swtpm_setup');
  const localca = findTool('swtpm_localca');
  if (setup === null || localca === null) return false;
  const caDir = path.join(dir, 'ca');
  const fresh = path.join(dir, 'state.new');
  const logFile = path.join(dir, 'swtpm-setup.log');
  const conf = {
    localca: path.join(caDir, 'swtpm-localca.conf'),
    options: path.join(caDir, 'swtpm-localca.options'),
    setup: path.join(caDir, 'swtpm_setup.conf'),
  };
  try {
    rmSync(fresh, { recursive: true, force: true });
    mkdirSync(fresh, { recursive: true, mode: 0o700 });
    mkdirSync(caDir, { recursive: true, mode: 0o700 });
    writeFileSync(conf.localca, [`statedir = ${caDir}`, `signingkey = ${path.join(caDir, 'signkey.pem')}`, `issuercert = ${path.join(caDir, 'issuercert.pem')}`, `certserial = ${path.join(caDir, 'certserial')}`, ''].join('\n'), { mode: 0o600 });
    writeFileSync(conf.options, '', { mode: 0o600 });
    writeFileSync(conf.setup, [`create_certs_tool = ${localca}`, `create_certs_tool_config = ${conf.localca}`, `create_certs_tool_options = ${conf.options}`, ''].join('\n'), { mode: 0o600 });
  } catch (e) {
    throw ioError('create', caDir, e);
  }
  try {
    await promisify(execFile)(setup, ['--tpm2', '--tpmstate', fresh, '--create-ek-cert', '--config', conf.setup, '--pcr-banks', '-', '--logfile', logFile], {
      timeout: 120_000,
      // swtpm_setup reads the CA's password, if any, from here; the local CA has none.
      env: { ...process.env, SWTPM_ROOTCA_PASSWORD: '' },
    });
  } catch (e) {
    rmSync(fresh, { recursive: true, force: true });
    throw new SwarmpayError('TPM_UNAVAILABLE', `swtpm_setup could not create the software TPM's endorsement key and certificate: ${logTail(logFile)}`, { hint: `see ${logFile}`, cause: e });
  }
  try {
    const pem = ['issuercert.pem', 'swtpm-localca-rootca-cert.pem'].map((f) => readFileSync(path.join(caDir, f), 'utf8').trim() + '\n').join('');
    rmSync(stateDir, { recursive: true, force: true });
    renameSync(fresh, stateDir);
    writeFileAtomic(path.join(dir, EK_CA_FILE), pem, 0o644);
  } catch (e) {
    throw ioError('install the software TPM state in', dir, e);
  }
  return true;
}

/**
 * Evicts the EKs swtpm_setup made persistent: swarmpay recreates the EK from its template
 * when it needs it (as go-attestation does), and a fresh TPM keeps its persistent handles
 * free for the SRK and whatever else its owner wants there.
 */
async function evictSetupEks(host: string, port: number): Promise<void> {
  const t = await SwtpmTransport.connect(host, port);
  try {
    const held = (await execute(t, GetCapability(TPM_CAP.HANDLES, 0x81010000, 16))).handles ?? [];
    for (const h of SETUP_PERSISTENT_EKS.filter((x) => held.includes(x))) {
      try {
        await execute(t, EvictControl(authorize(TPM_RH.OWNER, passwordSession()), h, h));
      } catch (e) {
        if (!(e instanceof TpmError)) throw e;
      }
    }
  } finally {
    await t.close();
  }
}

export interface StartSwtpmOptions {
  /** Manufacture a new TPM with an EK certificate (swtpm_setup); default true. */
  ekCert?: boolean;
  timeoutMs?: number;
}

export async function startSwtpm(dir: string, opts: StartSwtpmOptions | number = {}): Promise<{ state: SwtpmState; alreadyRunning: boolean }> {
  const { ekCert = true, timeoutMs = 20_000 } = typeof opts === 'number' ? { timeoutMs: opts } : opts;
  const running = runningSwtpm(dir);
  if (running) return { state: running, alreadyRunning: true };
  const binary = findSwtpm();
  const previous = readState<SwtpmState>(path.join(dir, STATE_FILE));
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (e) {
    throw ioError('create', dir, e);
  }
  const manufactured = ekCert ? await manufacture(dir) : false;
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
  const state: SwtpmState = { pid, host: '127.0.0.1', port, ctrlPort, ekCa: ekCaFile(dir) };
  writeFileAtomic(path.join(dir, STATE_FILE), JSON.stringify(state, null, 2) + '\n', 0o600);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (exited()) throw new SwarmpayError('TPM_UNAVAILABLE', `swtpm exited during start-up: ${logTail(logFile)}`, { hint: `see ${logFile}` });
    try {
      const t = await SwtpmTransport.connect(state.host, state.port);
      await t.close();
    } catch (e) {
      if (Date.now() > deadline) {
        await stopProcess(pid);
        throw new SwarmpayError('TPM_UNAVAILABLE', `swtpm did not accept connections within ${timeoutMs / 1000} s`, { hint: `see ${logFile}`, cause: e });
      }
      await sleep(50);
      continue;
    }
    if (manufactured) {
      try {
        await evictSetupEks(state.host, state.port);
      } catch (e) {
        await stopProcess(pid);
        throw new SwarmpayError('TPM_UNAVAILABLE', `the new software TPM did not answer: ${(e as Error).message}`, { hint: `see ${logFile}`, cause: e });
      }
    }
    return { state, alreadyRunning: false };
  }
}

export async function stopSwtpm(dir: string): Promise<{ wasRunning: boolean }> {
  const state = runningSwtpm(dir);
  if (!state) return { wasRunning: false };
  await stopProcess(state.pid);
  return { wasRunning: true };
}
