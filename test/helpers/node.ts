/**
 * A real btcd per test suite: its own temporary datadir and free loopback ports, stopped
 * in afterAll even when a test failed, and on process exit as a last resort.
 */
import path from 'node:path';
import { embeddedRpc, startNode, stopNode, nodeDir, type NodeState } from '../../src/chain/embedded-node.js';
import type { RpcClient } from '../../src/chain/rpc-client.js';
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
