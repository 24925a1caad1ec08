import { networks, type Network } from 'bitcoinjs-lib';
import { SwarmpayError } from '../errors.js';

export const NETWORK_NAMES = ['regtest', 'signet', 'testnet', 'mainnet'] as const;
export type NetworkName = (typeof NETWORK_NAMES)[number];

export function parseNetworkName(s: string): NetworkName {
  if ((NETWORK_NAMES as readonly string[]).includes(s)) return s as NetworkName;
  throw new SwarmpayError('USAGE', `unknown network "${s}"`, { hint: `use one of: ${NETWORK_NAMES.join(', ')}` });
}

/** bitcoinjs parameters; signet shares testnet's address prefixes. */
export function bitcoinjsNetwork(name: NetworkName): Network {
  switch (name) {
    case 'mainnet':
      return networks.bitcoin;
    case 'testnet':
    case 'signet':
      return networks.testnet;
    case 'regtest':
      return networks.regtest;
  }
}

/** BIP44 coin type: 0 on mainnet, 1 on every test network. */
export function coinType(name: NetworkName): 0 | 1 {
  return name === 'mainnet' ? 0 : 1;
}
