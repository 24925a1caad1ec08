/**
 * The networks by name, without bitcoinjs: the CLI's options and help need the names, and a
 * command such as `--version` should not load a Bitcoin library for them.
 */
import { SwarmpayError } from '../errors.js';

export const NETWORK_NAMES = ['regtest', 'signet', 'testnet', 'mainnet'] as const;
export type NetworkName = (typeof NETWORK_NAMES)[number];

export function parseNetworkName(s: string): NetworkName {
  if ((NETWORK_NAMES as readonly string[]).includes(s)) return s as NetworkName;
  throw new SwarmpayError('USAGE', `unknown network "${s}"`, { hint: `use one of: ${NETWORK_NAMES.join(', ')}` });
}
