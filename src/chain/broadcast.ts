import { SwarmpayError } from '../errors.js';
import type { ChainBackend } from './backend.js';

/**
 * Broadcasts a transaction that may have been broadcast before (a command run again after
 * a crash): the node refusing it because it already has it is success, any other refusal
 * is not.
 */
export async function broadcastOnce(chain: ChainBackend, hex: string, txid: string): Promise<void> {
  try {
    await chain.broadcast(hex);
  } catch (e) {
    if (e instanceof SwarmpayError && e.code === 'TX_REJECTED' && (await chain.getTransaction(txid)) !== null) return;
    throw e;
  }
}
