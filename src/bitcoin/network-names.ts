/**
 * The networks by name, without bitcoinjs: the CLI's options and help need the names, and a
 * command such as `--version` should not load a Bitcoin library for them (nor `wallet balance`
 * for its account path and addresses).
 */
import { SwarmpayError } from '../errors.js';

export const NETWORK_NAMES = ['regtest', 'signet', 'testnet', 'mainnet'] as const;
export type NetworkName = (typeof NETWORK_NAMES)[number];

export function parseNetworkName(s: string): NetworkName {
  if ((NETWORK_NAMES as readonly string[]).includes(s)) return s as NetworkName;
  throw new SwarmpayError('USAGE', `unknown network "${s}"`, { hint: `use one of: ${NETWORK_NAMES.join(', ')}` });
}

/** BIP44 coin type: 0 on mainnet, 1 on every test network. */
export function coinType(name: NetworkName): 0 | 1 {
  return name === 'mainnet' ? 0 : 1;
}

/** The human-readable part of a segwit address (bitcoinjs' `bech32` of each network). */
export function bech32Prefix(name: NetworkName): 'bc' | 'tb' | 'bcrt' {
  return name === 'mainnet' ? 'bc' : name === 'regtest' ? 'bcrt' : 'tb';
}
