/**
 * The embedded regtest node: a real btcd (or bitcoind) run as a daemon on loopback,
 * its chain, log, cookie and state file under <datadir>/regtest/node. Other datadirs
 * reach it with --rpc-url and --rpc-cookie, as they would any node. The RPC password is
 * never on the node's command line (`ps` shows it to every user): btcd reads it from its
 * config file (0600), bitcoind gets only its salted hash (-rpcauth).
 */
import { createHmac, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import { SwarmpayError, ioError } from '../errors.js';
import { RpcClient, readCookie } from './rpc-client.js';
import { writeFileAtomic } from '../util/atomic-file.js';
import { isOurProcess, logTail, readState, spawnDaemon, stablePort, stopProcess } from '../util/daemon.js';
import { shareFile, unshareFolders, type ShareGroup } from '../util/share.js';
import { setTimeout as sleep } from 'node:timers/promises';

export type NodeImpl = 'btcd' | 'bitcoind';

export interface NodeState {
  impl: NodeImpl;
  pid: number;
  rpcUrl: string;
  rpcPort: number;
  p2pPort: number;
  cookieFile: string;
  miningAddress: string;
  /** The group the cookie is shared with (`node start --share-group`); absent in node.json of older versions. */
  share?: ShareGroup | null;
}

/** btcd's regtest activates segwit (and CSV) by BIP9 signalling at this height. */
export const SEGWIT_ACTIVE_HEIGHT = 432;
/** The btcd release swarmpay pins; scripts/setup.sh installs the same one. */
const BTCD_MODULE = 'github.com/btcsuite/btcd@v0.24.2';

const STATE_FILE = 'node.json';

export function nodeDir(networkDir: string): string {
  return path.join(networkDir, 'node');
}

/** Finds the node binary: $SWARMPAY_BTCD (or $SWARMPAY_BITCOIND), PATH, then Go's bin folders. */
export function findNodeBinary(impl: NodeImpl): string {
  const envName = impl === 'btcd' ? 'SWARMPAY_BTCD' : 'SWARMPAY_BITCOIND';
  const candidates = [process.env[envName]];
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) if (dir) candidates.push(path.join(dir, impl));
  if (impl === 'btcd') {
    if (process.env.GOBIN) candidates.push(path.join(process.env.GOBIN, 'btcd'));
    for (const gopath of (process.env.GOPATH ?? path.join(homedir(), 'go')).split(path.delimiter)) candidates.push(path.join(gopath, 'bin', 'btcd'));
  }
  const found = candidates.find((c): c is string => !!c && existsSync(c));
  if (found) return found;
  throw new SwarmpayError('NODE_NOT_INSTALLED', `${impl} is not installed`, {
    hint: impl === 'btcd' ? `run \`npm run setup\` (or \`go install ${BTCD_MODULE}\`)` : 'install Bitcoin Core, or use the default --impl btcd',
  });
}

export function readNodeState(dir: string): NodeState | null {
  return readState<NodeState>(path.join(dir, STATE_FILE));
}

/** The node in node.json is ours only while its command line names this node's data folder. */
function isOurNode(state: NodeState, dir: string): boolean {
  return isOurProcess(state.pid, path.join(dir, 'data'));
}

/** A client for the node this datadir runs, or an error that says how to start it. */
export function embeddedRpc(dir: string): { client: RpcClient; state: NodeState } {
  const state = readNodeState(dir);
  if (!state || !isOurNode(state, dir)) {
    throw new SwarmpayError('NODE_UNREACHABLE', 'the embedded regtest node is not running', {
      hint: 'start it with `swarmpay node start` (same --datadir), or point --rpc-url at a running node',
    });
  }
  return { client: new RpcClient({ url: state.rpcUrl, ...readCookie(state.cookieFile) }), state };
}

/** The folders from the datadir down to the node's: those a shared cookie's readers must enter. */
function foldersToNode(dir: string): string[] {
  return [path.dirname(path.dirname(dir)), path.dirname(dir), dir];
}

/** Bitcoin Core's -rpcauth value (share/rpcauth/rpcauth.py): the user, a salt, and HMAC-SHA256(salt, password). */
function rpcAuth(user: string, pass: string): string {
  const salt = randomBytes(16).toString('hex');
  return `${user}:${salt}$${createHmac('sha256', salt).update(pass).digest('hex')}`;
}

function nodeArgs(impl: NodeImpl, dir: string, rpcPort: number, p2pPort: number, user: string, pass: string, miningAddress: string): string[] {
  if (impl === 'btcd') {
    return [
      '--regtest', '--txindex', '--addrindex', '--notls', '--rejectnonstd',
      `--configfile=${path.join(dir, 'btcd.conf')}`,
      `--datadir=${path.join(dir, 'data')}`, `--logdir=${path.join(dir, 'logs')}`,
      `--rpclisten=127.0.0.1:${rpcPort}`, `--listen=127.0.0.1:${p2pPort}`, `--miningaddr=${miningAddress}`,
    ];
  }
  return [
    '-regtest', '-server', '-txindex', '-listen=1', '-bind=127.0.0.1', '-rpcbind=127.0.0.1', '-rpcallowip=127.0.0.1',
    `-datadir=${path.join(dir, 'data')}`, `-rpcport=${rpcPort}`, `-port=${p2pPort}`, `-rpcauth=${rpcAuth(user, pass)}`,
  ];
}

export interface StartOptions {
  /** Make the cookie readable by this group (0640) and the folders to it enterable (0710); by default nothing is shared. */
  share?: ShareGroup;
  timeoutMs?: number;
}

/** Shares a running node's cookie with a group, and records it in node.json. */
function shareCookie(dir: string, state: NodeState, share: ShareGroup): NodeState {
  shareFile(state.cookieFile, foldersToNode(dir), share);
  const shared = { ...state, share };
  writeFileAtomic(path.join(dir, STATE_FILE), JSON.stringify(shared, null, 2) + '\n', 0o600);
  return shared;
}

export interface StartResult {
  state: NodeState;
  alreadyRunning: boolean;
  height: number;
}

/**
 * Starts the node as a daemon (or finds it running), waits for its RPC, and on a fresh
 * btcd chain mines to segwit activation so that users never meet pre-segwit rules.
 */
export async function startNode(dir: string, impl: NodeImpl, miningAddress: string, { share, timeoutMs = 60_000 }: StartOptions = {}): Promise<StartResult> {
  const existing = readNodeState(dir);
  if (existing && isOurNode(existing, dir)) {
    const { client } = embeddedRpc(dir);
    try {
      const height = await client.call<number>('getblockcount');
      // Sharing is added to a running node when asked; a plain `start` of a running node changes nothing.
      return { state: share ? shareCookie(dir, existing, share) : existing, alreadyRunning: true, height };
    } finally {
      client.close();
    }
  }
  const binary = findNodeBinary(impl);
  const user = `swarmpay-${randomBytes(4).toString('hex')}`;
  const pass = randomBytes(24).toString('hex');
  try {
    mkdirSync(path.join(dir, 'data'), { recursive: true, mode: 0o700 });
  } catch (e) {
    throw ioError('create', dir, e);
  }
  // A fresh start shares only what it is asked to: folders a previous start opened are closed again.
  if (existing?.share) unshareFolders(foldersToNode(dir));
  const cookieFile = path.join(dir, '.cookie');
  writeFileAtomic(cookieFile, `${user}:${pass}`, 0o600);
  if (share) {
    try {
      shareFile(cookieFile, foldersToNode(dir), share);
    } catch (e) {
      rmSync(cookieFile, { force: true });
      throw e;
    }
  }
  // Also keeps btcd from reading a config file in its home: the run stays hermetic.
  writeFileAtomic(path.join(dir, 'btcd.conf'), impl === 'btcd' ? `[Application Options]\nrpcuser=${user}\nrpcpass=${pass}\n` : '', 0o600);
  const rpcPort = await stablePort(existing?.rpcPort);
  const p2pPort = await stablePort(existing?.p2pPort);

  const logFile = path.join(dir, `${impl}.out`);
  const { pid, exited } = spawnDaemon(binary, nodeArgs(impl, dir, rpcPort, p2pPort, user, pass, miningAddress), logFile);
  const state: NodeState = { impl, pid, rpcUrl: `http://127.0.0.1:${rpcPort}/`, rpcPort, p2pPort, cookieFile, miningAddress, share: share ?? null };
  writeFileAtomic(path.join(dir, STATE_FILE), JSON.stringify(state, null, 2) + '\n', 0o600);

  const client = new RpcClient({ url: state.rpcUrl, user, password: pass }, 5_000);
  try {
    const deadline = Date.now() + timeoutMs;
    let height = -1;
    while (height < 0) {
      if (exited()) {
        throw new SwarmpayError('NODE_START_FAILED', `${impl} exited during start-up: ${logTail(logFile)}`, { hint: `see ${logFile}` });
      }
      try {
        height = await client.call<number>('getblockcount');
      } catch (e) {
        if (Date.now() > deadline) {
          await stopNode(dir);
          throw new SwarmpayError('NODE_START_FAILED', `${impl} did not answer RPC within ${timeoutMs / 1000} s`, { hint: `see ${logFile}`, cause: e });
        }
        await sleep(100);
      }
    }
    if (impl === 'btcd' && height < SEGWIT_ACTIVE_HEIGHT) {
      await client.call('generate', [SEGWIT_ACTIVE_HEIGHT - height]);
      height = SEGWIT_ACTIVE_HEIGHT;
    }
    if (impl === 'bitcoind' && height === 0) {
      await client.call('generatetoaddress', [101, miningAddress]);
      height = 101;
    }
    await assertSegwitActive(client);
    return { state, alreadyRunning: false, height };
  } finally {
    client.close();
  }
}

async function assertSegwitActive(client: RpcClient): Promise<void> {
  const info = await client.call<{ bip9_softforks?: Record<string, { status: string }>; softforks?: Record<string, { active?: boolean }> }>('getblockchaininfo');
  const active = info.bip9_softforks?.segwit?.status === 'active' || info.softforks?.segwit?.active === true;
  if (!active) throw new SwarmpayError('NODE_START_FAILED', 'segwit is not active on the node after start-up', { hint: 'delete the node folder under the datadir and start again' });
}

/** Stops the node (SIGTERM, then SIGKILL after a grace period) and forgets its pid. */
export async function stopNode(dir: string, graceMs = 20_000): Promise<{ wasRunning: boolean }> {
  const state = readNodeState(dir);
  if (!state || !isOurNode(state, dir)) return { wasRunning: false };
  await stopProcess(state.pid, graceMs);
  rmSync(state.cookieFile, { force: true });
  return { wasRunning: true };
}
