import { networks, type Network } from 'bitcoinjs-lib';
import type { NetworkName } from './network-names.js';

export { NETWORK_NAMES, parseNetworkName, type NetworkName } from './network-names.js';

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
