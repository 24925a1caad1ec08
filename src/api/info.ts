/**
 * `swarmpay info`: the datadir at a glance. Each part (node, wallet, TPM, channels, escrows)
 * is read on its own: one that cannot be read (node down, no TPM, no wallet) says so and
 * why, and the others are still shown.
 *
 * What is public needs no secret: the balance comes from the account's xpub, the TPM's state
 * from the keystore's header. Channels and escrows live in the keystore's secret: a keystore
 * the TPM seals is opened with it (read only: no counter is advanced), a passphrase keystore
 * only when the caller gives the passphrase; without it they are `locked`.
 */
import { existsSync } from 'node:fs';
import { SwarmpayError, type ErrorCode } from '../errors.js';
import type { NetworkName } from '../bitcoin/network.js';
import { walletBalance, walletPublic, type Balance } from '../wallet/wallet.js';
import { openContracts } from '../wallet/contract-wallet.js';
import { listChannels } from '../channel/store.js';
import { listEscrows } from '../escrow/store.js';
import { describeSpec } from '../tpm/tpm.js';
import type { ChainKind, Environment } from './environment.js';
import type { KeystoreStatus, TpmApi } from './tpm.js';
import { unlockerFor, type Credentials } from './credentials.js';

/** How the keystore is opened; null: there is no wallet. */
type Protector = 'passphrase' | 'tpm' | null;

/** Why a part could not be read: the error that reading it raised. */
export interface PartError {
  code: ErrorCode;
  message: string;
  hint?: string;
}

export interface Unavailable {
  state: 'unavailable';
  error: PartError;
}

export type NodePart = { state: 'running'; backend: ChainKind; url: string; height: number; peers: number } | (Unavailable & { backend: ChainKind | null });

export type WalletPart =
  | { state: 'none' }
  | { state: 'ready'; fingerprint: string; xpub: string; protector: 'passphrase' | 'tpm'; balance: ({ state: 'known' } & Balance) | Unavailable }
  | Unavailable;

export type TpmPart = { state: 'present' | 'none'; tpm: string | null; keystore: KeystoreStatus } | (Unavailable & { tpm: string | null });

/** Channels or escrows of the wallet, counted by status. */
export type ContractsPart = { state: 'counted'; total: number; byStatus: Record<string, number> } | { state: 'locked' } | { state: 'none' } | Unavailable;

export interface Overview {
  network: NetworkName;
  datadir: string;
  /** <datadir>/swarmpay.conf, or null when there is none. */
  config: string | null;
  node: NodePart;
  wallet: WalletPart;
  tpm: TpmPart;
  channels: ContractsPart;
  escrows: ContractsPart;
}

/** The part's error, or the error itself when it is not one swarmpay raises (a bug is no part's state). */
export function unavailable(e: unknown): Unavailable {
  if (!(e instanceof SwarmpayError)) throw e;
  return { state: 'unavailable', error: { code: e.code, message: e.message, ...(e.hint === undefined ? {} : { hint: e.hint }) } };
}

async function node(env: Environment): Promise<NodePart> {
  let backend: ChainKind | null = null;
  try {
    backend = env.chainKind;
    const height = await env.chain().tipHeight();
    return { state: 'running', backend, height, ...(await env.nodePeers()) };
  } catch (e) {
    return { ...unavailable(e), backend };
  }
}

async function wallet(env: Environment, protector: Protector): Promise<WalletPart> {
  if (protector === null) return { state: 'none' };
  try {
    const pub = walletPublic(env.networkDir, env.network);
    let balance: ({ state: 'known' } & Balance) | Unavailable;
    try {
      balance = { state: 'known', ...(await walletBalance(env.chain(), env.networkDir, env.network)) };
    } catch (e) {
      balance = unavailable(e);
    }
    return { state: 'ready', fingerprint: pub.fingerprint, xpub: pub.xpub, protector, balance };
  } catch (e) {
    return unavailable(e);
  }
}

async function tpm(env: Environment, api: TpmApi): Promise<TpmPart> {
  let device: string | null = null;
  try {
    const spec = env.tpmSpec;
    device = spec.kind === 'none' ? null : describeSpec(spec);
    const st = await api.status();
    return { state: st.tpm === null ? 'none' : 'present', tpm: st.tpm, keystore: st.keystore };
  } catch (e) {
    return { ...unavailable(e), tpm: device };
  }
}

function countBy(statuses: string[]): ContractsPart {
  const byStatus: Record<string, number> = {};
  for (const s of statuses) byStatus[s] = (byStatus[s] ?? 0) + 1;
  return { state: 'counted', total: statuses.length, byStatus };
}

async function contracts(env: Environment, protector: Protector, c: Credentials): Promise<{ channels: ContractsPart; escrows: ContractsPart }> {
  if (protector === null) return { channels: { state: 'none' }, escrows: { state: 'none' } };
  if (protector === 'passphrase' && c.passphrase === undefined) return { channels: { state: 'locked' }, escrows: { state: 'locked' } };
  try {
    const ctx = await openContracts(env.networkDir, env.network, unlockerFor(env, c, 'other'), env.chainOnDemand());
    return { channels: countBy(listChannels(ctx.session).map((r) => r.status)), escrows: countBy(listEscrows(ctx.session).map((r) => r.status)) };
  } catch (e) {
    const part = unavailable(e);
    return { channels: part, escrows: part };
  }
}

export async function readOverview(env: Environment, api: TpmApi, c: Credentials = {}): Promise<Overview> {
  const head = { network: env.network, datadir: env.datadir, config: existsSync(env.confFile) ? env.confFile : null, node: await node(env) };
  let protector: Protector;
  try {
    const k = api.keystore();
    protector = k.exists ? k.protector : null;
  } catch (e) {
    // A keystore that cannot be read: no wallet, channel or escrow can be.
    const part = unavailable(e);
    return { ...head, wallet: part, tpm: await tpm(env, api), channels: part, escrows: part };
  }
  return { ...head, wallet: await wallet(env, protector), tpm: await tpm(env, api), ...(await contracts(env, protector, c)) };
}
