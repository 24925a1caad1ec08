/**
 * A real btcd per test suite: its own temporary datadir and free loopback ports, stopped
 * in afterAll even when a test failed, and on process exit as a last resort.
 */
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { embeddedRpc, findNodeBinary, startNode, stopNode, nodeDir, type NodeState } from '../../src/chain/embedded-node.js';
import { RpcClient } from '../../src/chain/rpc-client.js';
import { freePort, spawnDaemon, stopProcess } from '../../src/util/daemon.js';
import { BtcdChain } from '../../src/chain/rpc-chain.js';
import { FAUCET_ADDRESS } from '../../src/wallet/faucet.js';
import { tempDir } from './tmp.js';

export interface TestNode {
  /** A swarmpay --datadir whose regtest node this is. */
  datadir: string;
  nodeDir: string;
  state: NodeState;
  rpc: RpcClient;
  chain: BtcdChain;
  stop(): Promise<void>;
}

export async function startTestNode(): Promise<TestNode> {
  const tmp = tempDir('swarmpay-node-');
  const dir = nodeDir(path.join(tmp.dir, 'regtest'));
  const { state } = await startNode(dir, 'btcd', FAUCET_ADDRESS);
  const kill = () => {
    try {
      process.kill(state.pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  };
  process.once('exit', kill);
  const rpc = embeddedRpc(dir).client;
  return {
    datadir: tmp.dir,
    nodeDir: dir,
    state,
    rpc,
    chain: new BtcdChain('regtest', rpc),
    async stop() {
      rpc.close();
      await stopNode(dir);
      process.removeListener('exit', kill);
      tmp.remove();
    },
  };
}

/**
 * A regtest btcd started by hand in `dir`, as startNode would not: with just `flags` (no
 * address index unless asked, nothing mined), RPC user "u" password "p" on a free port.
 */
export async function startBareBtcd(dir: string, flags: string[] = []): Promise<{ url: string; rpc: RpcClient; stop(): Promise<void> }> {
  const [rpcPort, p2pPort] = [await freePort(), await freePort()];
  const { pid } = spawnDaemon(findNodeBinary('btcd'), [
    '--regtest', '--notls', `--configfile=${path.join(dir, 'btcd.conf')}`, `--datadir=${path.join(dir, 'data')}`, `--logdir=${path.join(dir, 'logs')}`,
    `--rpclisten=127.0.0.1:${rpcPort}`, `--listen=127.0.0.1:${p2pPort}`, '--rpcuser=u', '--rpcpass=p', ...flags,
  ], path.join(dir, 'btcd.out'));
  const url = `http://127.0.0.1:${rpcPort}/`;
  const rpc = new RpcClient({ url, user: 'u', password: 'p' });
  const stop = async () => {
    rpc.close();
    await stopProcess(pid);
  };
  for (let tries = 0; ; tries++) {
    try {
      await rpc.call('getblockcount');
      return { url, rpc, stop };
    } catch (e) {
      if (tries > 100) {
        await stop();
        throw e;
      }
      await sleep(100);
    }
  }
}
