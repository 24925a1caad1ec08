import { networks, type Network } from 'bitcoinjs-lib';
import type { NetworkName } from './network-names.js';

export { NETWORK_NAMES, coinType, parseNetworkName, type NetworkName } from './network-names.js';

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
