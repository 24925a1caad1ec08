/**
 * What a contract protocol (channel, escrow) may ask of the wallet, and no more: the key of
 * one contract, a script to be paid to, a funding, a CPFP child. The seed stays in here,
 * so a long-running payee or seller, and any bug in one, holds keys for its own contracts
 * and nothing that spends the wallet's coins another way.
 */
import type { PublicNode } from './xpub.js';
import type { PrivateNode } from './xprv.js';
import { SwarmpayError } from '../errors.js';
import type { ChainBackend } from '../chain/backend.js';
import type { NetworkName } from '../bitcoin/network.js';
import { addressToScript } from '../bitcoin/address.js';
import { isP2wsh } from '../bitcoin/scripts.js';
import type { SignedTx } from '../bitcoin/spend.js';
import { storeWithout, type ContractStore, type KeystoreSession, type Unlocker } from '../keystore/keystore.js';
import { peerStaticKey, type StaticKey } from '../peer/keys.js';
import { CHANNEL_CHAIN, ESCROW_CHAIN, accountNode, contractKeyOf, type ContractChain } from './hd.js';
import { planCpfp, signCpfp, type CpfpOptions, type CpfpParent, type CpfpPlan } from './cpfp.js';
import { allInputs, withLockedCoins } from './coin-locks.js';
import { planPayments, signSend } from './send.js';
import { receiveAddressOf, sessionAccount, unlockWallet } from './wallet.js';
import type { FeeRate } from '../bitcoin/fee-rate.js';

/** The chains of contract keys: one per protocol, so their keys never collide. */
type ContractKind = 'channel' | 'escrow';

/** The key of one contract: its private key signs that contract's transactions only. */
export interface ContractKey {
  pub: Buffer;
  priv: Buffer;
}

export interface ContractWallet {
  readonly network: NetworkName;
  /** This wallet's identity on the peer link (derived from the seed, so the mnemonic restores it). */
  readonly peerKey: StaticKey;
  /** Key `index` of the contract chain of `kind`. */
  key(kind: ContractKind, index: number): ContractKey;
  /** A script of this wallet to be paid to: its first receive address nothing has paid yet. */
  payoutScript(): Promise<Buffer>;
  /**
   * Signs a funding of contracts from the wallet's coins (output i pays to[i], change after
   * them) and runs `use` with it, which broadcasts it or gives up. Every output is a
   * contract's (P2WSH): a protocol cannot pay the wallet's coins anywhere else. Until `use`
   * settles, its coins are locked: a confirmation, a store and a peer's answer can come
   * between signing and broadcasting, and no other command may pick those coins meanwhile.
   */
  fund<T>(to: { address: string; amount: bigint }[], feeRate: FeeRate, use: (signed: SignedTx) => Promise<T>): Promise<T>;
  /** Signs a CPFP child of `parent` from the wallet's outputs in it (and coins, unless parentOnly), and runs `use` with it, as fund does. */
  bump<T>(parent: CpfpParent, feeRate: FeeRate, opts: CpfpOptions, use: (child: SignedTx & { replaces: string | null }) => Promise<T>): Promise<T>;
}

/** What a contract protocol works with: the narrow wallet, its part of the keystore, the chain. */
export interface ContractContext {
  wallet: ContractWallet;
  /** The keystore without the wallet's seed. */
  session: ContractStore;
  network: NetworkName;
  networkDir: string;
  chain: ChainBackend;
}

const CHAINS: Record<ContractKind, ContractChain> = { channel: CHANNEL_CHAIN, escrow: ESCROW_CHAIN };

/** The keystore keys a contract protocol never sees: the wallet's mnemonic. */
const WALLET_SECRET = ['wallet'] as const;

class SeedWallet implements ContractWallet {
  readonly peerKey: StaticKey;
  /** The account's private node: derived once (a BIP32 path from the seed costs several EC multiplications). */
  readonly #node: PrivateNode;
  readonly #seed: Uint8Array;
  readonly #account: PublicNode;

  constructor(
    seed: Uint8Array,
    readonly network: NetworkName,
    private readonly chain: ChainBackend,
    account: PublicNode,
    /** Where the coin locks are, shared with every other command on this datadir. */
    private readonly networkDir: string,
  ) {
    this.#seed = seed;
    this.#node = accountNode(seed, network);
    this.#account = account;
    this.peerKey = peerStaticKey(seed);
  }

  key(kind: ContractKind, index: number): ContractKey {
    return contractKeyOf(this.#node, CHAINS[kind], index);
  }

  async payoutScript(): Promise<Buffer> {
    return Buffer.from(addressToScript((await receiveAddressOf(this.chain, this.#account, this.network)).address, this.network));
  }

  async fund<T>(to: { address: string; amount: bigint }[], feeRate: FeeRate, use: (signed: SignedTx) => Promise<T>): Promise<T> {
    for (const t of to) {
      const script = addressToScript(t.address, this.network);
      if (!isP2wsh(script)) throw new SwarmpayError('INTERNAL', `a contract funding may pay only P2WSH outputs, not ${t.address}`);
    }
    const plan = (exclude: ReadonlySet<string>) => planPayments(this.chain, this.#account, this.network, to, feeRate, { exclude });
    return withLockedCoins(this.chain, this.networkDir, plan, allInputs, (p) => use(signSend(p, this.#seed, this.network)));
  }

  async bump<T>(parent: CpfpParent, feeRate: FeeRate, opts: CpfpOptions, use: (child: SignedTx & { replaces: string | null }) => Promise<T>): Promise<T> {
    const plan = (exclude: ReadonlySet<string>) => planCpfp(this.chain, this.#account, this.network, parent, feeRate, { ...opts, exclude });
    // The earlier child's outputs too: one spent since the plan would be cancelled with the child.
    const taken = (p: CpfpPlan) => ({ outpoints: [...p.taken, ...p.holds], addresses: [...p.taken, ...p.holds].map((c) => c.address) });
    return withLockedCoins(this.chain, this.networkDir, plan, taken, (p) => use({ ...signCpfp(p, this.#seed, this.network), replaces: p.replaces?.txid ?? null }));
  }
}

/** The contract face of an unlocked wallet. */
export function contractContext(session: KeystoreSession, seed: Uint8Array, chain: ChainBackend, networkDir: string): ContractContext {
  const network = session.network;
  return { wallet: new SeedWallet(seed, network, chain, sessionAccount(session, network), networkDir), session: storeWithout(session, WALLET_SECRET), network, networkDir, chain };
}

/** Unlocks the wallet for the contract protocols (no checkpoint: their steps checkpoint as they move coins). */
export async function openContracts(networkDir: string, network: NetworkName, unlocker: Unlocker, chain: ChainBackend): Promise<ContractContext> {
  const { session, seed } = await unlockWallet(networkDir, network, unlocker, { checkpoint: false });
  return contractContext(session, seed, chain, networkDir);
}
