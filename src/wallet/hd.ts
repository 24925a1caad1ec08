/** BIP32 keys on BIP84 paths: m/84'/coin'/account' with receive (0) and change (1) chains. */
import { createHash, createHmac } from 'node:crypto';
import { BIP32Factory, type BIP32Interface } from 'bip32';
import { address as bitcoinAddress } from 'bitcoinjs-lib';
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

/** A public node: what public derivation needs. */
interface PublicNode {
  publicKey: Uint8Array;
  chainCode: Uint8Array;
}

/**
 * Child `index` of a public node (BIP32 CKDpub) with Node's own HMAC-SHA512: a command that
 * scans the wallet derives forty addresses or more, and the bip32 library's pure-JS hashes,
 * cold in a new process, made that most of `wallet balance`. Null in the case BIP32 leaves
 * to the next index (IL not below the curve order, or the point at infinity; about 2^-127),
 * which the caller hands to the bip32 library, whose derivation handles it as BIP32 says.
 */
function publicChild(parent: PublicNode, index: number): PublicNode | null {
  const data = Buffer.alloc(37);
  data.set(parent.publicKey, 0);
  data.writeUInt32BE(index, 33);
  const i = createHmac('sha512', parent.chainCode).update(data).digest();
  const il = i.subarray(0, 32);
  if (!ecc.isPrivate(il)) return null;
  const publicKey = ecc.pointAddScalar(parent.publicKey, il, true);
  return publicKey === null ? null : { publicKey, chainCode: i.subarray(32) };
}

/** Each account's receive and change nodes, derived once: every address is one derivation from them. */
const chainNodes = new WeakMap<BIP32Interface, Map<ChainIndex, PublicNode | null>>();

function chainNode(account: BIP32Interface, chain: ChainIndex): PublicNode | null {
  let nodes = chainNodes.get(account);
  if (nodes === undefined) chainNodes.set(account, (nodes = new Map()));
  if (!nodes.has(chain)) nodes.set(chain, publicChild(account, chain));
  return nodes.get(chain)!;
}

function hash160(data: Uint8Array): Buffer {
  return createHash('ripemd160').update(createHash('sha256').update(data).digest()).digest();
}

export function deriveAddress(account: BIP32Interface, network: NetworkName, chain: ChainIndex, index: number): DerivedAddress {
  const parent = chainNode(account, chain);
  const node = (parent && publicChild(parent, index)) ?? account.derive(chain).derive(index);
  const program = hash160(node.publicKey);
  const script = Buffer.concat([Buffer.from([0x00, 0x14]), program]);
  const address = bitcoinAddress.toBech32(program, 0, bitcoinjsNetwork(network).bech32);
  return { chain, index, path: `${accountPath(network)}/${chain}/${index}`, address, script, pubkey: Buffer.from(node.publicKey) };
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
