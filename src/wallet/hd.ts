/** BIP32 keys on BIP84 paths: m/84'/coin'/account' with receive (0) and change (1) chains. */
import { createHash } from 'node:crypto';
import { BIP32Factory, type BIP32Interface } from 'bip32';
import { payments } from 'bitcoinjs-lib';
import * as ecc from 'tiny-secp256k1';
import { bitcoinjsNetwork, coinType, type NetworkName } from '../bitcoin/network.js';

export const bip32 = BIP32Factory(ecc);

export type ChainIndex = 0 | 1;
export const RECEIVE: ChainIndex = 0;
export const CHANGE: ChainIndex = 1;
/**
 * Contract keys live on chains of the account the wallet never scans for coins, so they
 * never collide with receive or change keys and the mnemonic still recovers them.
 */
export const CHANNEL_CHAIN = 2;
export const ESCROW_CHAIN = 3;

export function accountPath(network: NetworkName, account = 0): string {
  return `m/84'/${coinType(network)}'/${account}'`;
}

export function accountNode(seed: Uint8Array, network: NetworkName, account = 0): BIP32Interface {
  return bip32.fromSeed(seed, bitcoinjsNetwork(network)).derivePath(accountPath(network, account));
}

/** Key `index` of a contract chain (CHANNEL_CHAIN, ESCROW_CHAIN). */
export function contractKey(seed: Uint8Array, network: NetworkName, chain: typeof CHANNEL_CHAIN | typeof ESCROW_CHAIN, index: number): { priv: Buffer; pub: Buffer } {
  const node = accountNode(seed, network).derive(chain).derive(index);
  return { priv: Buffer.from(node.privateKey!), pub: Buffer.from(node.publicKey) };
}

/** The account's extended public key, in the network's standard prefix (xpub / tpub). */
export function accountXpub(seed: Uint8Array, network: NetworkName): string {
  return accountNode(seed, network).neutered().toBase58();
}

export interface DerivedAddress {
  chain: ChainIndex;
  index: number;
  path: string;
  address: string;
  script: Uint8Array;
  pubkey: Uint8Array;
}

export function deriveAddress(account: BIP32Interface, network: NetworkName, chain: ChainIndex, index: number): DerivedAddress {
  const node = account.derive(chain).derive(index);
  const p = payments.p2wpkh({ pubkey: node.publicKey, network: bitcoinjsNetwork(network) });
  return { chain, index, path: `${accountPath(network)}/${chain}/${index}`, address: p.address!, script: p.output!, pubkey: node.publicKey };
}

export function accountFromXpub(xpub: string, network: NetworkName): BIP32Interface {
  return bip32.fromBase58(xpub, bitcoinjsNetwork(network));
}

/** SLIP-132 versions of a BIP84 account key: zpub on mainnet, vpub on the test networks. */
const ZPUB_VERSION = 0x04b24746;
const VPUB_VERSION = 0x045f1cf6;
const BASE58 = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz';

/**
 * The account key as a zpub (mainnet) or vpub (testnet, signet, regtest): the xpub's bytes
 * under the version that tells wallets such as Sparrow or Electrum the account is native segwit.
 */
export function accountZpub(xpub: string, network: NetworkName): string {
  const node = accountFromXpub(xpub, network);
  const payload = Buffer.alloc(78);
  payload.writeUInt32BE(coinType(network) === 0 ? ZPUB_VERSION : VPUB_VERSION, 0);
  payload.writeUInt8(node.depth, 4);
  payload.writeUInt32BE(node.parentFingerprint, 5);
  payload.writeUInt32BE(node.index, 9);
  Buffer.from(node.chainCode).copy(payload, 13);
  Buffer.from(node.publicKey).copy(payload, 45);
  return base58check(payload);
}

function base58check(payload: Buffer): string {
  const check = createHash('sha256').update(createHash('sha256').update(payload).digest()).digest().subarray(0, 4);
  const bytes = Buffer.concat([payload, check]);
  let n = BigInt('0x' + bytes.toString('hex'));
  let out = '';
  while (n > 0n) {
    out = BASE58[Number(n % 58n)] + out;
    n /= 58n;
  }
  for (const b of bytes) {
    if (b !== 0) break;
    out = '1' + out;
  }
  return out;
}
