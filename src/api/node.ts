/**
 * The embedded regtest node through the library: a real btcd (or bitcoind) run as a daemon
 * for a datadir, with the datadir's software TPM beside it, and mining with faucet payouts.
 * Other datadirs reach the node with `options` (rpcUrl and cookie), as they would any node.
 */
import path from 'node:path';
import { SwarmpayError } from '../errors.js';
import { embeddedRpc, readNodeState, startNode, stopNode, type NodeImpl } from '../chain/embedded-node.js';
import { readCookie } from '../chain/rpc-client.js';
import { writeFileAtomic } from '../util/atomic-file.js';
import { firstClosedFolder, resolveGroup, shareFile, type ShareGroup } from '../util/share.js';
import { FAUCET_ADDRESS, faucetPay, regtestSubsidy } from '../wallet/faucet.js';
import { runningSwtpm, startSwtpm, stopSwtpm, swtpmDir, type SwtpmState } from '../tpm/swtpm-process.js';
import { Environment, type SwarmpayOptions } from './environment.js';

export type { NodeImpl };

/** Who besides the owner may read a file: a group, and the first folder on the way its members may not enter (then they cannot yet). */
export interface Shared extends ShareGroup {
  closedFolder: string | null;
}

export interface NodeStarted {
  running: true;
  alreadyRunning: boolean;
  impl: NodeImpl;
  pid: number;
  height: number;
  rpcUrl: string;
  rpcCookie: string;
  /** The group that may read the cookie (`shareGroup`); null: the owner only. */
  share: Shared | null;
  miningAddress: string;
  /** The datadir's software TPM; null without swtpm (then `tpmUnavailable` says why). */
  tpm: SwtpmState | null;
  tpmUnavailable?: { message: string; hint: string | undefined };
}

export interface NodeStatus {
  running: boolean;
  impl: NodeImpl | null;
  pid: number | null;
  height: number | null;
  rpcUrl: string | null;
  rpcCookie: string | null;
  tpm: { host: string; port: number; pid: number } | null;
}

/** A copy of the running node's credentials for another user: `--rpc-url rpcUrl --rpc-cookie file` (with `--chain chain`). */
export interface NodeCredentials {
  file: string;
  rpcUrl: string;
  chain: 'btcd' | 'bitcoind';
  share: Shared | null;
}

export interface Mined {
  blocks: number;
  height: number;
  lastBlock: string | undefined;
  /** The faucet's payment of those blocks' rewards, if asked for. */
  paid: { address: string; sats: bigint; txid: string } | null;
}

export class RegtestNode {
  readonly env: Environment;

  constructor(options: SwarmpayOptions = {}) {
    this.env = new Environment(options);
  }

  private requireRegtest(): void {
    if (this.env.network !== 'regtest') {
      throw new SwarmpayError('NOT_REGTEST', `the embedded node and mining are for regtest, not ${this.env.network}`, { hint: 'run a full node for other networks and use --chain bitcoind' });
    }
  }

  /**
   * Starts the node (or finds it running) and the datadir's software TPM; a fresh btcd chain is
   * mined to segwit activation. The cookie is the owner's alone unless `shareGroup` (a group name
   * or gid) names the group that may read it; a running node gets that sharing added.
   */
  async start(impl: NodeImpl = 'btcd', { shareGroup }: { shareGroup?: string } = {}): Promise<NodeStarted> {
    this.requireRegtest();
    const group = shareGroup === undefined ? undefined : resolveGroup(shareGroup);
    const r = await startNode(this.env.nodeDir, impl, FAUCET_ADDRESS, group ? { share: group } : {});
    const share = r.state.share ? shared(r.state.share, r.state.cookieFile) : null;
    const doc: NodeStarted = { running: true, alreadyRunning: r.alreadyRunning, impl: r.state.impl, pid: r.state.pid, height: r.height, rpcUrl: r.state.rpcUrl, rpcCookie: r.state.cookieFile, share, miningAddress: r.state.miningAddress, tpm: null };
    try {
      doc.tpm = (await startSwtpm(swtpmDir(this.env.networkDir))).state;
    } catch (e) {
      // Without swtpm the node still runs; keystores fall back to their passphrase.
      if (!(e instanceof SwarmpayError && e.code === 'TPM_UNAVAILABLE')) throw e;
      doc.tpmUnavailable = { message: e.message, hint: e.hint };
    }
    return doc;
  }

  async stop(): Promise<{ stopped: boolean; tpmStopped: boolean }> {
    const r = await stopNode(this.env.nodeDir);
    const t = await stopSwtpm(swtpmDir(this.env.networkDir));
    return { stopped: r.wasRunning, tpmStopped: t.wasRunning };
  }

  async status(): Promise<NodeStatus> {
    const state = readNodeState(this.env.nodeDir);
    let height: number | null = null;
    try {
      const { client } = embeddedRpc(this.env.nodeDir);
      try {
        height = await client.call<number>('getblockcount');
      } finally {
        client.close();
      }
    } catch (e) {
      if (!(e instanceof SwarmpayError && (e.code === 'NODE_UNREACHABLE' || e.code === 'RPC_AUTH'))) throw e;
    }
    const live = height !== null && state !== null ? state : null;
    const sw = runningSwtpm(swtpmDir(this.env.networkDir));
    return { running: live !== null, impl: state?.impl ?? null, pid: live?.pid ?? null, height, rpcUrl: live?.rpcUrl ?? null, rpcCookie: live?.cookieFile ?? null, tpm: sw ? { host: sw.host, port: sw.port, pid: sw.pid } : null };
  }

  /** How another datadir reaches this node: its options for `new Swarmpay(...)`. */
  options(): Pick<SwarmpayOptions, 'chain' | 'rpcUrl' | 'rpcCookie'> {
    const state = readNodeState(this.env.nodeDir);
    if (state === null) throw new SwarmpayError('NODE_UNREACHABLE', 'the regtest node of this datadir is not running', { hint: 'start it with `swarmpay node start`' });
    return { chain: state.impl === 'btcd' ? 'btcd' : 'bitcoind', rpcUrl: state.rpcUrl, rpcCookie: state.cookieFile };
  }

  /**
   * Writes the running node's RPC credentials to `out` (a cookie file, 0600; 0640 in `shareGroup`
   * with it) for another user's `--rpc-cookie`. They stay valid until the node stops.
   */
  credentials(out: string, { shareGroup }: { shareGroup?: string } = {}): NodeCredentials {
    this.requireRegtest();
    const group = shareGroup === undefined ? undefined : resolveGroup(shareGroup);
    const { client, state } = embeddedRpc(this.env.nodeDir);
    client.close();
    const { user, password } = readCookie(state.cookieFile);
    const file = path.resolve(out);
    writeFileAtomic(file, `${user}:${password}\n`, 0o600);
    if (group) shareFile(file, [], group);
    return { file, rpcUrl: state.rpcUrl, chain: state.impl === 'btcd' ? 'btcd' : 'bitcoind', share: group ? shared(group, file) : null };
  }

  /** Mines `blocks`; with `to`, the faucet first pays that address those blocks' rewards, confirmed by them. */
  async mine(blocks: number, to?: string): Promise<Mined> {
    this.requireRegtest();
    const chain = this.env.chain();
    let paid: Mined['paid'] = null;
    if (to !== undefined) {
      const tip = await chain.tipHeight();
      let sats = 0n;
      for (let h = tip + 1; h <= tip + blocks; h++) sats += regtestSubsidy(h);
      const tx = await faucetPay(chain, to, sats);
      paid = { address: to, sats, txid: tx.txid };
    }
    const hashes = await chain.mine(blocks);
    return { blocks: hashes.length, height: await chain.tipHeight(), lastBlock: hashes[hashes.length - 1], paid };
  }

  /** Pays `address` `sats` from the regtest faucet (unconfirmed until a block is mined). */
  async fund(address: string, sats: bigint): Promise<{ txid: string }> {
    this.requireRegtest();
    return { txid: (await faucetPay(this.env.chain(), address, sats)).txid };
  }

  close(): Promise<void> {
    return this.env.close();
  }
}

function shared(group: ShareGroup, file: string): Shared {
  return { group: group.group, gid: group.gid, closedFolder: firstClosedFolder(path.dirname(file), group.gid) };
}
