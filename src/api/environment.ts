/**
 * Where a swarmpay works: the network, the datadir and its folders, the chain backend, the
 * TPM and the default fee rate, resolved from options (the CLI's flags), then SWARMPAY_*
 * environment variables, then <datadir>/swarmpay.conf, then <datadir>/<network>/config.json,
 * then defaults. Connections are made on first use and closed by close().
 */
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import { SwarmpayError } from '../errors.js';
import { parseNetworkName, type NetworkName } from '../bitcoin/network.js';
import { FeeRate } from '../bitcoin/fee-rate.js';
import { parseFeeRate } from '../bitcoin/policy.js';
import type { ChainBackend } from '../chain/backend.js';
import { RpcClient, readCookie } from '../chain/rpc-client.js';
import { makeRpcChain } from '../chain/rpc-chain.js';
import { embeddedRpc, nodeDir } from '../chain/embedded-node.js';
import { FAUCET_ADDRESS } from '../wallet/faucet.js';
import { Tpm, resolveTpmSpec, type TpmSpec } from '../tpm/tpm.js';
import { swtpmDir } from '../tpm/swtpm-process.js';
import type { PeerStderr } from '../peer/command-stderr.js';
import { CHAIN_KINDS, CONF_FILE, parseChainKind, readConf, type ChainKind, type ConfKey, type ConfValue } from './conf.js';

export { CHAIN_KINDS, type ChainKind, type ConfKey };

/** Where and on what a swarmpay works; every field may be left out. */
export interface SwarmpayOptions {
  /** mainnet, testnet, signet or regtest (the default). */
  network?: string;
  /** The data folder: $SWARMPAY_DATADIR, else ~/.swarmpay. It holds swarmpay.conf. */
  datadir?: string;
  /** The chain backend: embedded (regtest default), btcd or bitcoind. */
  chain?: string;
  /** The node's JSON-RPC URL (credentials in it, or from rpcCookie). */
  rpcUrl?: string;
  /** The node's cookie file. */
  rpcCookie?: string;
  /** auto (the default), none, /dev/tpmrm0, or swtpm:HOST:PORT. */
  tpm?: string;
  /** Where a peer command's stderr goes (`{command}` peers), a line at a time with the peer's name; without it, to this process's stderr as it comes. */
  peerStderr?: PeerStderr;
}

/** <datadir>/<network>/config.json, the older per-network file: chain, rpcUrl and rpcCookie. */
type FileConfig = Partial<Record<'chain' | 'rpc-url' | 'rpc-cookie', string>>;

/** A setting's value and where it came from, for errors that name it and for `swarmpay info`. */
export interface Setting {
  value: string;
  source: 'option' | 'environment' | 'swarmpay.conf' | 'config.json';
  /** The environment variable, swarmpay.conf's FILE:LINE, config.json's path; null for an option. */
  where: string | null;
}

/** The environment variable for each setting swarmpay.conf may hold. */
const ENV_VARS: Record<ConfKey, string> = {
  network: 'SWARMPAY_NETWORK',
  chain: 'SWARMPAY_CHAIN',
  'rpc-url': 'SWARMPAY_RPC_URL',
  'rpc-cookie': 'SWARMPAY_RPC_COOKIE',
  tpm: 'SWARMPAY_TPM',
  'fee-rate': 'SWARMPAY_FEE_RATE',
};

const OPTION_OF: Record<ConfKey, Exclude<keyof SwarmpayOptions, 'datadir' | 'peerStderr'> | null> = {
  network: 'network',
  chain: 'chain',
  'rpc-url': 'rpcUrl',
  'rpc-cookie': 'rpcCookie',
  tpm: 'tpm',
  // A fee rate is each command's own option (--fee-rate): the caller's, before defaultFeeRate().
  'fee-rate': null,
};

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
  /** <datadir>/swarmpay.conf, read or not (it need not exist). */
  readonly confFile: string;
  private readonly conf: Map<ConfKey, ConfValue>;
  private readonly config: FileConfig;
  private readonly configFile: string;
  private chainBackend: ChainBackend | undefined;
  private rpc: RpcClient | undefined;
  private endpoint: string | undefined;
  private tpmClient: Promise<Tpm> | undefined;

  constructor(readonly opts: SwarmpayOptions = {}) {
    this.datadir = path.resolve(opts.datadir || process.env.SWARMPAY_DATADIR || path.join(homedir(), '.swarmpay'));
    this.confFile = path.join(this.datadir, CONF_FILE);
    // The network picks the conf's [section], so it is looked up among the conf's top-level keys only.
    const top = readConf(this.confFile, null).get('network');
    const network = this.fromOptionOrEnv('network') ?? (top && this.confSetting(top));
    this.network = network === undefined ? 'regtest' : parseSetting(network, parseNetworkName);
    this.conf = readConf(this.confFile, this.network);
    this.networkDir = path.join(this.datadir, this.network);
    this.configFile = path.join(this.networkDir, 'config.json');
    this.config = readConfig(this.configFile);
  }

  private fromOptionOrEnv(key: ConfKey): Setting | undefined {
    const option = OPTION_OF[key];
    const given = option === null ? undefined : this.opts[option];
    if (given !== undefined) return { value: given, source: 'option', where: null };
    const env = process.env[ENV_VARS[key]];
    // An empty variable counts as unset, as `SWARMPAY_X= cmd` means in a shell.
    if (env !== undefined && env !== '') return { value: env, source: 'environment', where: ENV_VARS[key] };
    return undefined;
  }

  /** A setting from the options, the environment, swarmpay.conf, then config.json; undefined when none gives it. */
  setting(key: ConfKey): Setting | undefined {
    const given = this.fromOptionOrEnv(key);
    if (given) return given;
    const line = this.conf.get(key);
    if (line) return this.confSetting(line);
    const legacy = key === 'chain' || key === 'rpc-url' || key === 'rpc-cookie' ? this.config[key] : undefined;
    return legacy === undefined ? undefined : { value: legacy, source: 'config.json', where: this.configFile };
  }

  private confSetting(line: ConfValue): Setting {
    return { value: line.value, source: 'swarmpay.conf', where: `${this.confFile}:${line.line}` };
  }

  /**
   * The fee rate for a command given none: SWARMPAY_FEE_RATE, else swarmpay.conf's fee-rate,
   * else 2 sat/vB on regtest, where fees are play money; elsewhere the fee is the user's to choose.
   */
  defaultFeeRate(): FeeRate {
    const s = this.setting('fee-rate');
    if (s !== undefined) return parseSetting(s, parseFeeRate);
    if (this.network === 'regtest') return REGTEST_FEE_RATE;
    throw new SwarmpayError('FEE_RATE_REQUIRED', `on ${this.network} the fee is yours to choose`, { hint: `pass --fee-rate <sat/vB>, or set ${ENV_VARS['fee-rate']} or fee-rate= in ${this.confFile}` });
  }

  get nodeDir(): string {
    return nodeDir(this.networkDir);
  }

  get chainKind(): ChainKind {
    const given = this.setting('chain');
    const kind = given !== undefined ? parseSetting(given, parseChainKind) : (this.rpcUrl === undefined && this.network === 'regtest' ? 'embedded' : this.network === 'regtest' ? 'btcd' : 'bitcoind');
    if (kind === 'embedded' && this.network !== 'regtest') {
      throw new SwarmpayError('USAGE', `the embedded node runs regtest only, not ${this.network}`, { hint: 'use --chain bitcoind with --rpc-url' });
    }
    return kind;
  }

  /** The node's RPC URL as configured (credentials in it included), if any is. */
  get rpcUrl(): string | undefined {
    return this.setting('rpc-url')?.value;
  }

  /** The chain backend, connected on first use. */
  chain(): ChainBackend {
    if (this.chainBackend) return this.chainBackend;
    const kind = this.chainKind;
    if (kind === 'embedded') {
      const { client, state } = embeddedRpc(this.nodeDir);
      this.rpc = client;
      this.endpoint = state.rpcUrl;
      this.chainBackend = makeRpcChain(state.impl === 'btcd' ? 'btcd' : 'core', this.network, client, state.miningAddress);
      return this.chainBackend;
    }
    const url = this.rpcUrl ?? (kind === 'bitcoind' ? `http://127.0.0.1:${CORE_DEFAULTS[this.network].port}/` : undefined);
    if (url === undefined) throw new SwarmpayError('USAGE', `--chain ${kind} needs --rpc-url`, { hint: 'give the node\'s URL, e.g. --rpc-url http://127.0.0.1:18334' });
    this.endpoint = stripCredentials(url);
    this.rpc = new RpcClient({ url: this.endpoint, ...this.credentials(url, kind) });
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
      history: (a) => chain().history(a),
      broadcast: (hex) => chain().broadcast(hex),
      getTransaction: (txid) => chain().getTransaction(txid),
      findSpend: (o, a) => chain().findSpend(o, a),
      txOut: (o) => chain().txOut(o),
      waitForConfirmations: (txid, wanted, opts) => chain().waitForConfirmations(txid, wanted, opts),
      estimateFeeRate: (target) => chain().estimateFeeRate(target),
      mine: (blocks) => chain().mine(blocks),
    };
  }

  /** The node's RPC URL (no credentials) and how many peers it has, asked of the node. */
  async nodePeers(): Promise<{ url: string; peers: number }> {
    this.chain();
    if (this.rpc === undefined || this.endpoint === undefined) throw new SwarmpayError('INTERNAL', 'the chain backend connected without an RPC client');
    return { url: this.endpoint, peers: await this.rpc.call<number>('getconnectioncount') };
  }

  /** How often waits look at the chain: regtest blocks come when mined, others every ten minutes. */
  get pollMs(): number {
    return this.network === 'regtest' ? 200 : 5000;
  }

  private credentials(url: string, kind: ChainKind): { user: string; password: string } {
    const u = new URL(url);
    if (u.username) return { user: decodeURIComponent(u.username), password: decodeURIComponent(u.password) };
    const cookie = this.setting('rpc-cookie')?.value;
    if (cookie) return readCookie(cookie);
    if (kind === 'bitcoind') return readCookie(path.join(homedir(), '.bitcoin', CORE_DEFAULTS[this.network].sub, '.cookie'));
    throw new SwarmpayError('USAGE', `no RPC credentials for ${url}`, { hint: 'pass --rpc-cookie FILE (a node started by `swarmpay node start` writes <datadir>/regtest/node/.cookie)' });
  }

  /** The TPM spec; `auto` looks for /dev/tpmrm0, then (on regtest only) the software TPM `node start` runs for this datadir. */
  get tpmSpec(): TpmSpec {
    const given = this.setting('tpm');
    // `node start`'s software TPM is a regtest tool: its state is a folder of the regtest
    // datadir, bound to no device. `auto` never seals a real network's keys to it; naming it
    // (--tpm swtpm:HOST:PORT) still does.
    const spec = (text: string) => resolveTpmSpec(text, this.network === 'regtest' ? swtpmDir(path.join(this.datadir, 'regtest')) : null);
    return given === undefined ? spec('auto') : parseSetting(given, spec);
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

/** On regtest, where fees are play money, a default; every other network needs a fee rate given. */
const REGTEST_FEE_RATE = FeeRate.ofSatPerVb(2n);

/**
 * A setting parsed; a bad environment variable is refused by name (swarmpay.conf's lines were
 * checked when it was read, options and config.json speak for themselves).
 */
function parseSetting<T>(s: Setting, parse: (text: string) => T): T {
  try {
    return parse(s.value);
  } catch (e) {
    if (!(e instanceof SwarmpayError) || s.source !== 'environment') throw e;
    throw new SwarmpayError(e.code, `${s.where}: ${e.message}`, { hint: `fix or unset ${s.where}` });
  }
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
  for (const [k, key] of [['chain', 'chain'], ['rpcUrl', 'rpc-url'], ['rpcCookie', 'rpc-cookie']] as const) {
    const v: unknown = (doc as Record<string, unknown>)[k];
    if (typeof v === 'string') cfg[key] = v;
  }
  return cfg;
}
