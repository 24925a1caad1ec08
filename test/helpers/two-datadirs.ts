/**
 * Two swarmpay users on one machine, as the channel and escrow CLI tests need them: the
 * payer's datadir runs the node (`node start`: a real btcd), the payee's reaches it by
 * --rpc-url and --rpc-cookie; a wallet in each under one passphrase file, the payer's funded.
 * Everything lives in one temporary folder; stop() stops the node and removes it.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { swarmpay, type CliResult } from './cli.js';
import { startServer, type Server } from './server.js';
import { tempDir } from './tmp.js';

export const PASSPHRASE = 'a good long passphrase';

export interface ServeOptions {
  /** The datadir to serve (default the payee's); one made by another() for a payee of its own. */
  datadir?: string;
  /** The port (default any free one): a restarted payee listens where the payer will look for it. */
  port?: number;
  /** More flags for `channel serve`. */
  args?: string[];
  env?: Record<string, string>;
}

export interface TwoDatadirs {
  /** The temporary folder: both datadirs, the passphrase file, whatever a test writes. */
  dir: string;
  payer: string;
  payee: string;
  /** The passphrase file of every wallet here. */
  pass: string;
  /** --rpc-url and --rpc-cookie of the payer's node, for any other datadir. */
  chainArgs: string[];
  /** `swarmpay --json --yes --datadir PAYER --tpm none ARGS`. */
  a(...args: string[]): Promise<CliResult>;
  /** The same on the payee's datadir, on the payer's node. */
  b(...args: string[]): Promise<CliResult>;
  /** A third datadir NAME on the same node, its wallet created: a payee of a test's own. */
  another(name: string): Promise<string>;
  /** `channel serve --listen 127.0.0.1:PORT --poll 1` on the payee's datadir (or `datadir`). */
  serve(o?: ServeOptions): Promise<Server>;
  /** Mines `n` blocks. */
  mine(n?: number): Promise<void>;
  /** Stops the node and removes the folder (servers a test started are its own to stop first). */
  stop(): Promise<void>;
}

const ok = (r: CliResult, what: string): CliResult => {
  if (r.code !== 0) throw new Error(`${what} failed (exit ${r.code}): ${r.stdout}${r.stderr}`);
  return r;
};

/** Starts the node, creates both wallets and pays the payer `fundBlocks` block rewards (each to a fresh address). */
export async function startTwoDatadirs(o: { fundBlocks?: number } = {}): Promise<TwoDatadirs> {
  const tmp = tempDir();
  const payer = path.join(tmp.dir, 'payer');
  const payee = path.join(tmp.dir, 'payee');
  const pass = path.join(tmp.dir, 'pass');
  writeFileSync(pass, PASSPHRASE);
  const chainArgs: string[] = [];
  const on = (datadir: string, args: string[]) => swarmpay(['--datadir', datadir, '--tpm', 'none', ...(datadir === payer ? [] : chainArgs), ...args]);
  const create = async (datadir: string, name: string) => {
    ok(await on(datadir, ['wallet', 'create', '--mnemonic-file', path.join(tmp.dir, `${name}.words`), '--passphrase-file', pass]), `wallet create in ${name}`);
    return datadir;
  };
  const a = (...args: string[]) => on(payer, args);
  const stop = async () => {
    await a('node', 'stop');
    tmp.remove();
  };
  try {
    const started = ok(await a('node', 'start'), 'node start');
    chainArgs.push('--rpc-url', started.json.rpcUrl, '--rpc-cookie', started.json.rpcCookie);
    await create(payer, 'payer');
    await create(payee, 'payee');
    for (let i = 0; i < (o.fundBlocks ?? 1); i++) {
      const addr = ok(await a('wallet', 'address'), 'wallet address').json.address as string;
      ok(await a('node', 'mine', '1', '--to', addr), 'node mine');
    }
  } catch (e) {
    await stop();
    throw e;
  }
  return {
    dir: tmp.dir,
    payer,
    payee,
    pass,
    chainArgs,
    a,
    b: (...args) => on(payee, args),
    another: (name) => create(path.join(tmp.dir, name), name),
    serve: ({ datadir = payee, port = 0, args = [], env = {} } = {}) =>
      startServer(['--datadir', datadir, '--tpm', 'none', ...chainArgs, 'channel', 'serve', '--listen', `127.0.0.1:${port}`, '--passphrase-file', pass, '--poll', '1', ...args], env),
    mine: async (n = 1) => void ok(await a('node', 'mine', String(n)), `node mine ${n}`),
    stop,
  };
}
