/**
 * The embedded regtest node through the library: a real btcd (or bitcoind) run as a daemon
 * for a datadir, with the datadir's software TPM beside it, and mining with faucet payouts.
 * Other datadirs reach the node with `options` (rpcUrl and cookie), as they would any node.
 */
import { SwarmpayError } from '../errors.js';
import { embeddedRpc, readNodeState, startNode, stopNode, type NodeImpl } from '../chain/embedded-node.js';
import { FAUCET_ADDRESS, faucetPay, regtestSubsidy } from '../wallet/faucet.js';
import { runningSwtpm, startSwtpm, stopSwtpm, swtpmDir, type SwtpmState } from '../tpm/swtpm-process.js';
import { Environment, type SwarmpayOptions } from './environment.js';

export type { NodeImpl };

export interface NodeStarted {
  running: true;
  alreadyRunning: boolean;
  impl: NodeImpl;
  pid: number;
  height: number;
  rpcUrl: string;
  rpcCookie: string;
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

  /** Starts the node (or finds it running) and the datadir's software TPM; a fresh btcd chain is mined to segwit activation. */
  async start(impl: NodeImpl = 'btcd'): Promise<NodeStarted> {
    this.requireRegtest();
    const r = await startNode(this.env.nodeDir, impl, FAUCET_ADDRESS);
    const doc: NodeStarted = { running: true, alreadyRunning: r.alreadyRunning, impl: r.state.impl, pid: r.state.pid, height: r.height, rpcUrl: r.state.rpcUrl, rpcCookie: r.state.cookieFile, miningAddress: r.state.miningAddress, tpm: null };
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
