import { SwarmpayError } from '../errors.js';
import type { ChainBackend } from './backend.js';

/** Bitcoin Core's answer to a transaction whose outputs are already in its UTXO set: it is confirmed. */
const RPC_VERIFY_ALREADY_IN_CHAIN = -27;

/**
 * Broadcasts a transaction that may have been broadcast before (a command run again after
 * a crash): the node refusing it because it already has it (in its mempool or its chain)
 * is success, any other refusal is not.
 */
export async function broadcastOnce(chain: ChainBackend, hex: string, txid: string): Promise<void> {
  try {
    await chain.broadcast(hex);
  } catch (e) {
    if (!(e instanceof SwarmpayError) || e.code !== 'TX_REJECTED') throw e;
    // Core without -txindex cannot look up a confirmed transaction, but says it has it.
    if (e.details?.rpcCode === RPC_VERIFY_ALREADY_IN_CHAIN || (await chain.getTransaction(txid)) !== null) return;
    throw e;
  }
}
