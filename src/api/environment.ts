/**
 * Where a swarmpay works: the network, the datadir and its folders, the chain backend and
 * the TPM, resolved from options, then <datadir>/<network>/config.json, then defaults.
 * Connections are made on first use and closed by close().
 */
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import { SwarmpayError } from '../errors.js';
import { parseNetworkName, type NetworkName } from '../bitcoin/network.js';
import type { ChainBackend } from '../chain/backend.js';
import { RpcClient, readCookie } from '../chain/rpc-client.js';
import { makeRpcChain } from '../chain/rpc-chain.js';
import { embeddedRpc, nodeDir } from '../chain/embedded-node.js';
import { FAUCET_ADDRESS } from '../wallet/faucet.js';
import { Tpm, resolveTpmSpec, type TpmSpec } from '../tpm/tpm.js';
import { swtpmDir } from '../tpm/swtpm-process.js';

export const CHAIN_KINDS = ['embedded', 'btcd', 'bitcoind'] as const;
export type ChainKind = (typeof CHAIN_KINDS)[number];

/** Where and on what a swarmpay works; every field may be left out. */
export interface SwarmpayOptions {
  /** mainnet, testnet, signet or regtest (the default). */
  network?: string;
  /** The data folder: $SWARMPAY_DATADIR, else ~/.swarmpay. */
  datadir?: string;
  /** The chain backend: embedded (regtest default), btcd or bitcoind. */
  chain?: string;
  /** The node's JSON-RPC URL (credentials in it, or from rpcCookie). */
  rpcUrl?: string;
  /** The node's cookie file. */
  rpcCookie?: string;
  /** auto (the default), none, /dev/tpmrm0, or swtpm:HOST:PORT. */
  tpm?: string;
}

interface FileConfig {
  chain?: string;
  rpcUrl?: string;
  rpcCookie?: string;
}

/** Bitcoin Core's default RPC ports and cookie folders, for chain bitcoind without rpcUrl. */
const CORE_DEFAULTS: Record<NetworkName, { port: number; sub: string }> = {
  mainnet: { port: 8332, sub: '' },
  testnet: { port: 18332, sub: 'testnet3' },
  signet: { port: 38332, sub: 'signet' },
  regtest: { port: 18443, sub: 'regtest' },
};

export class Environment {
  readonly network: NetworkName;
  readonly datadir: string;
  /** <datadir>/<network>: keystore, node and state of this network. */
  readonly networkDir: string;
  private readonly config: FileConfig;
  private chainBackend: ChainBackend | undefined;
  private rpc: RpcClient | undefined;
  private tpmClient: Promise<Tpm> | undefined;

  constructor(readonly opts: SwarmpayOptions = {}) {
    this.network = parseNetworkName(opts.network ?? 'regtest');
    this.datadir = path.resolve(opts.datadir ?? process.env.SWARMPAY_DATADIR ?? path.join(homedir(), '.swarmpay'));
    this.networkDir = path.join(this.datadir, this.network);
    this.config = readConfig(path.join(this.networkDir, 'config.json'));
  }

  get nodeDir(): string {
    return nodeDir(this.networkDir);
  }

  get chainKind(): ChainKind {
    const kind = this.opts.chain ?? this.config.chain ?? (this.rpcUrl === undefined && this.network === 'regtest' ? 'embedded' : this.network === 'regtest' ? 'btcd' : 'bitcoind');
    if (!isChainKind(kind)) throw new SwarmpayError('USAGE', `unknown chain backend "${kind}"`, { hint: `use one of: ${CHAIN_KINDS.join(', ')}` });
    if (kind === 'embedded' && this.network !== 'regtest') {
      throw new SwarmpayError('USAGE', `the embedded node runs regtest only, not ${this.network}`, { hint: 'use --chain bitcoind with --rpc-url' });
    }
    return kind;
  }

  private get rpcUrl(): string | undefined {
    return this.opts.rpcUrl ?? this.config.rpcUrl;
  }

  /** The chain backend, connected on first use. */
  chain(): ChainBackend {
    if (this.chainBackend) return this.chainBackend;
    const kind = this.chainKind;
    if (kind === 'embedded') {
      const { client, state } = embeddedRpc(this.nodeDir);
      this.rpc = client;
      this.chainBackend = makeRpcChain(state.impl === 'btcd' ? 'btcd' : 'core', this.network, client, state.miningAddress);
      return this.chainBackend;
    }
    const url = this.rpcUrl ?? (kind === 'bitcoind' ? `http://127.0.0.1:${CORE_DEFAULTS[this.network].port}/` : undefined);
    if (url === undefined) throw new SwarmpayError('USAGE', `--chain ${kind} needs --rpc-url`, { hint: 'give the node\'s URL, e.g. --rpc-url http://127.0.0.1:18334' });
    this.rpc = new RpcClient({ url: stripCredentials(url), ...this.credentials(url, kind) });
    this.chainBackend = makeRpcChain(kind === 'btcd' ? 'btcd' : 'core', this.network, this.rpc, FAUCET_ADDRESS);
    return this.chainBackend;
  }

  /**
   * The chain backend, connected when first asked something: a wallet unlocked only to mend
   * its files (`channel recover`) needs no node.
   */
  chainOnDemand(): ChainBackend {
    const chain = () => this.chain();
    return {
      network: this.network,
      tipHeight: () => chain().tipHeight(),
      utxos: (a) => chain().utxos(a),
      used: (a) => chain().used(a),
      broadcast: (hex) => chain().broadcast(hex),
      getTransaction: (txid) => chain().getTransaction(txid),
      findSpend: (o, a) => chain().findSpend(o, a),
      txOut: (o) => chain().txOut(o),
      waitForConfirmations: (txid, wanted, opts) => chain().waitForConfirmations(txid, wanted, opts),
      estimateFeeRate: (target) => chain().estimateFeeRate(target),
      mine: (blocks) => chain().mine(blocks),
    };
  }

  /** How often waits look at the chain: regtest blocks come when mined, others every ten minutes. */
  get pollMs(): number {
    return this.network === 'regtest' ? 200 : 5000;
  }

  private credentials(url: string, kind: ChainKind): { user: string; password: string } {
    const u = new URL(url);
    if (u.username) return { user: decodeURIComponent(u.username), password: decodeURIComponent(u.password) };
    const cookie = this.opts.rpcCookie ?? this.config.rpcCookie;
    if (cookie) return readCookie(cookie);
    if (kind === 'bitcoind') return readCookie(path.join(homedir(), '.bitcoin', CORE_DEFAULTS[this.network].sub, '.cookie'));
    throw new SwarmpayError('USAGE', `no RPC credentials for ${url}`, { hint: 'pass --rpc-cookie FILE (a node started by `swarmpay node start` writes <datadir>/regtest/node/.cookie)' });
  }

  /** The TPM spec; `auto` looks for /dev/tpmrm0, then the software TPM `node start` runs for this datadir. */
  get tpmSpec(): TpmSpec {
    return resolveTpmSpec(this.opts.tpm ?? 'auto', swtpmDir(path.join(this.datadir, 'regtest')));
  }

  /** The TPM, connected on first use. */
  tpm(): Promise<Tpm> {
    this.tpmClient ??= Tpm.open(this.tpmSpec);
    return this.tpmClient;
  }

  /** The TPM if this device has one, else null (a seller without one sends no fresh quote). */
  async tpmIfAny(): Promise<Tpm | null> {
    return this.tpmSpec.kind === 'none' ? null : this.tpm();
  }

  async close(): Promise<void> {
    this.rpc?.close();
    const tpm = this.tpmClient;
    this.tpmClient = undefined;
    if (tpm) await (await tpm.catch(() => null))?.close();
  }
}

function isChainKind(k: string): k is ChainKind {
  return (CHAIN_KINDS as readonly string[]).includes(k);
}

function stripCredentials(url: string): string {
  const u = new URL(url);
  u.username = '';
  u.password = '';
  return u.toString();
}

function readConfig(file: string): FileConfig {
  if (!existsSync(file)) return {};
  let doc: unknown;
  try {
    doc = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new SwarmpayError('INVALID_FILE', `the config file ${file} is not valid JSON: ${(e as Error).message}`, { hint: 'fix or remove it' });
  }
  const cfg: FileConfig = {};
  if (typeof doc !== 'object' || doc === null) return cfg;
  for (const k of ['chain', 'rpcUrl', 'rpcCookie'] as const) {
    const v: unknown = (doc as Record<string, unknown>)[k];
    if (typeof v === 'string') cfg[k] = v;
  }
  return cfg;
}
