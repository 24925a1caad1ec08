/**
 * <datadir>/swarmpay.conf, in the manner of bitcoin.conf: `key=value` lines, `#` comments,
 * blank lines, and `[network]` sections whose keys apply on that network only and win over
 * the keys above the first section. Every line is checked when the file is read, so a bad
 * one is refused (INVALID_FILE, FILE:LINE) whatever the command, not when a command uses it.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { SwarmpayError } from '../errors.js';
import { NETWORK_NAMES, parseNetworkName, type NetworkName } from '../bitcoin/network.js';
import { parseFeeRate } from '../bitcoin/policy.js';
import { resolveTpmSpec } from '../tpm/tpm.js';
import { CHAIN_KINDS, type ChainKind } from '../chain/backend.js';

export const CONF_FILE = 'swarmpay.conf';

export { CHAIN_KINDS, type ChainKind };

export const CONF_KEYS = ['network', 'chain', 'rpc-url', 'rpc-cookie', 'tpm', 'fee-rate'] as const;
export type ConfKey = (typeof CONF_KEYS)[number];

export interface ConfValue {
  value: string;
  line: number;
}

export function parseChainKind(k: string): ChainKind {
  if (!(CHAIN_KINDS as readonly string[]).includes(k)) throw new SwarmpayError('USAGE', `unknown chain backend "${k}"`, { hint: `use one of: ${CHAIN_KINDS.join(', ')}` });
  return k as ChainKind;
}

function checkUrl(text: string): void {
  try {
    new URL(text);
  } catch {
    throw new SwarmpayError('USAGE', `"${text}" is not a URL`, { hint: 'e.g. http://127.0.0.1:18443/' });
  }
}

/** Each key's check; `auto` is always a TPM spec, and looking for a TPM is no check of the file. */
const CHECKS: Record<ConfKey, (v: string) => unknown> = {
  network: parseNetworkName,
  chain: parseChainKind,
  'rpc-url': checkUrl,
  'rpc-cookie': () => undefined,
  tpm: (v) => v === 'auto' || resolveTpmSpec(v, null),
  'fee-rate': parseFeeRate,
};

function isConfKey(k: string): k is ConfKey {
  return (CONF_KEYS as readonly string[]).includes(k);
}

/**
 * The settings for `network` (null: the top-level keys only, to find the network): its
 * section's keys over the top-level ones. A relative rpc-cookie is taken from the datadir,
 * as bitcoin.conf's paths are. A missing file is no settings.
 */
export function readConf(file: string, network: NetworkName | null): Map<ConfKey, ConfValue> {
  if (!existsSync(file)) return new Map();
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new SwarmpayError('INVALID_FILE', `cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { hint: 'check its permissions, or remove it' });
  }
  const top = new Map<ConfKey, ConfValue>();
  const own = new Map<ConfKey, ConfValue>();
  const seen = new Set<string>();
  let section: NetworkName | null = null;
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = i + 1;
    const bad = (why: string, hint: string) => new SwarmpayError('INVALID_FILE', `${file}:${line}: ${why}`, { hint });
    const t = raw.trim();
    if (t === '' || t.startsWith('#')) return;
    const header = /^\[(.*)\]$/.exec(t);
    if (header) {
      const name = header[1]!.trim();
      if (!(NETWORK_NAMES as readonly string[]).includes(name)) throw bad(`[${name}] is not a network`, `sections are networks: ${NETWORK_NAMES.map((n) => `[${n}]`).join(', ')}`);
      section = name as NetworkName;
      return;
    }
    const eq = t.indexOf('=');
    if (eq < 0) throw bad(`"${t}" is not key=value`, 'write settings as key=value, comments after #');
    const key = t.slice(0, eq).trim();
    const value = t.slice(eq + 1).trim();
    if (!isConfKey(key)) throw bad(`unknown key "${key}"`, `the keys are: ${CONF_KEYS.join(', ')}`);
    if (value === '') throw bad(`${key} has no value`, 'give a value, or remove the line');
    if (key === 'network' && section !== null) throw bad('network= inside a [section]', 'set network= above the first section: the sections are chosen by it');
    const scoped = `${section ?? ''}/${key}`;
    if (seen.has(scoped)) throw bad(`${key} is set twice${section ? ` in [${section}]` : ''}`, 'keep one of the lines');
    seen.add(scoped);
    try {
      CHECKS[key](value);
    } catch (e) {
      if (!(e instanceof SwarmpayError)) throw e;
      throw bad(e.message, 'fix the value, or remove the line');
    }
    const v = { value: key === 'rpc-cookie' ? path.resolve(path.dirname(file), value) : value, line };
    if (section === null) top.set(key, v);
    else if (section === network) own.set(key, v);
  });
  return new Map([...top, ...own]);
}
