/** BIP32 keys on BIP84 paths: m/84'/coin'/account' with receive (0) and change (1) chains. */
import { bech32 } from 'bech32';
import { scriptHex } from '../bitcoin/scripts.js';
import { bech32Prefix, coinType, type NetworkName } from '../bitcoin/network-names.js';
import { hash160, parseXpub, publicChild, serializeXpub, type ExtendedPublicKey, type PublicNode } from './xpub.js';
import { PrivateNode } from './xprv.js';

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

export function accountNode(seed: Uint8Array, network: NetworkName, account = 0): PrivateNode {
  return PrivateNode.fromSeed(seed).derivePath(accountPath(network, account));
}

export type ContractChain = typeof CHANNEL_CHAIN | typeof ESCROW_CHAIN;

/** Key `index` of a contract chain of an account's private node. */
export function contractKeyOf(account: PrivateNode, chain: ContractChain, index: number): { priv: Buffer; pub: Buffer } {
  const node = account.derive(chain).derive(index);
  return { priv: Buffer.from(node.privateKey), pub: Buffer.from(node.publicKey) };
}

/** Key `index` of a contract chain (CHANNEL_CHAIN, ESCROW_CHAIN) of the seed's account. */
export function contractKey(seed: Uint8Array, network: NetworkName, chain: ContractChain, index: number): { priv: Buffer; pub: Buffer } {
  return contractKeyOf(accountNode(seed, network), chain, index);
}

/** The account's extended public key, in the network's standard prefix (xpub / tpub). */
export function accountXpub(seed: Uint8Array, network: NetworkName): string {
  return accountNode(seed, network).xpub(network);
}

export interface DerivedAddress {
  chain: ChainIndex;
  index: number;
  path: string;
  address: string;
  script: Uint8Array;
  pubkey: Uint8Array;
}

/** The wallet's address an output script pays, if any: which outputs of a transaction (or which coins its inputs spend) are the wallet's. */
export type ScriptOwners = (script: Uint8Array) => DerivedAddress | undefined;

export function scriptOwners(addresses: readonly DerivedAddress[]): ScriptOwners {
  const byScript = new Map(addresses.map((a) => [scriptHex(a.script), a]));
  return (script) => byScript.get(scriptHex(script));
}

/** Each account's receive and change nodes, derived once: every address is one derivation from them. */
const chainNodes = new WeakMap<PublicNode, Map<ChainIndex, PublicNode>>();

function chainNode(account: PublicNode, chain: ChainIndex): PublicNode {
  let nodes = chainNodes.get(account);
  if (nodes === undefined) chainNodes.set(account, (nodes = new Map()));
  let node = nodes.get(chain);
  if (node === undefined) nodes.set(chain, (node = publicChild(account, chain)));
  return node;
}

/** Address `index` of `chain` of the account (an xpub's, or the seed's private node). */
export function deriveAddress(account: PublicNode, network: NetworkName, chain: ChainIndex, index: number): DerivedAddress {
  const node = publicChild(chainNode(account, chain), index);
  const program = hash160(node.publicKey);
  const script = Buffer.concat([Buffer.from([0x00, 0x14]), program]);
  const address = bech32.encode(bech32Prefix(network), [0, ...bech32.toWords(program)]);
  return { chain, index, path: `${accountPath(network)}/${chain}/${index}`, address, script, pubkey: Buffer.from(node.publicKey) };
}

/** The account of the wallet's xpub: what reading the wallet needs, without the seed. */
export function accountFromXpub(xpub: string, network: NetworkName): ExtendedPublicKey {
  return parseXpub(xpub, network);
}

/** SLIP-132 versions of a BIP84 account key: zpub on mainnet, vpub on the test networks. */
const ZPUB_VERSION = 0x04b24746;
const VPUB_VERSION = 0x045f1cf6;

/**
 * The account key as a zpub (mainnet) or vpub (testnet, signet, regtest): the xpub's bytes
 * under the version that tells wallets such as Sparrow or Electrum the account is native segwit.
 */
export function accountZpub(xpub: string, network: NetworkName): string {
  return serializeXpub(accountFromXpub(xpub, network), coinType(network) === 0 ? ZPUB_VERSION : VPUB_VERSION);
}
