import { address as baddress } from 'bitcoinjs-lib';
import { SwarmpayError } from '../errors.js';
import { NETWORK_NAMES, bitcoinjsNetwork, type NetworkName } from './network.js';

/**
 * Turns an address into the output script it pays, for one network. An address that
 * is valid on another network is refused with that network named, so a user who pastes
 * a testnet address into a mainnet wallet learns why rather than seeing "invalid".
 */
export function addressToScript(addr: string, network: NetworkName): Uint8Array {
  try {
    return baddress.toOutputScript(addr, bitcoinjsNetwork(network));
  } catch {
    const others = NETWORK_NAMES.filter((n) => n !== network && decodes(addr, n));
    if (others.length > 0) {
      throw new SwarmpayError('WRONG_NETWORK', `${addr} is a ${others.join('/')} address, not a ${network} one`, {
        hint: `pay a ${network} address, or run with ${others.map((n) => `--network ${n}`).join(' or ')}`,
      });
    }
    throw new SwarmpayError('INVALID_ADDRESS', `"${addr}" is not a valid Bitcoin address`, {
      hint: 'check the address for typos; swarmpay accepts base58 (P2PKH, P2SH) and bech32/bech32m (segwit) addresses',
    });
  }
}

export function scriptToAddress(script: Uint8Array, network: NetworkName): string {
  return baddress.fromOutputScript(script, bitcoinjsNetwork(network));
}

function decodes(addr: string, network: NetworkName): boolean {
  try {
    baddress.toOutputScript(addr, bitcoinjsNetwork(network));
    return true;
  } catch {
    return false;
  }
}
