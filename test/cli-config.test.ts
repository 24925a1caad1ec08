/**
 * Settings from flags, SWARMPAY_* variables, <datadir>/swarmpay.conf and the older
 * <datadir>/<network>/config.json, in that order; a bad swarmpay.conf line is refused with
 * its file and line, whatever the command, and changes nothing.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { swarmpay } from './helpers/cli.js';
import { tempDir } from './helpers/tmp.js';
import { Environment } from '../src/api/environment.js';
import { feeRateFor } from '../src/cli/args.js';
import { isSwarmpayError } from '../src/errors.js';

const VARS = ['SWARMPAY_NETWORK', 'SWARMPAY_CHAIN', 'SWARMPAY_RPC_URL', 'SWARMPAY_RPC_COOKIE', 'SWARMPAY_TPM', 'SWARMPAY_FEE_RATE'];

describe('swarmpay.conf, environment variables and flags', () => {
  let tmp: ReturnType<typeof tempDir>;
  let dir: string;
  const conf = (text: string) => writeFileSync(path.join(dir, 'swarmpay.conf'), text);
  const saved: Record<string, string | undefined> = {};

  beforeAll(() => {
    tmp = tempDir();
    for (const v of VARS) saved[v] = process.env[v];
  });
  beforeEach(() => {
    dir = path.join(tmp.dir, String(Math.random()).slice(2));
    mkdirSync(dir);
    for (const v of VARS) delete process.env[v];
  });
  afterAll(() => {
    for (const v of VARS) {
      if (saved[v] === undefined) delete process.env[v];
      else process.env[v] = saved[v];
    }
    tmp.remove();
  });

  test('the network: flag over SWARMPAY_NETWORK over network= over regtest', async () => {
    const net = async (env: Record<string, string>, ...flags: string[]) => (await swarmpay(['--datadir', dir, '--tpm', 'none', ...flags, 'info'], env)).json.network;
    expect(await net({})).toBe('regtest');
    conf('network=signet\n');
    expect(await net({})).toBe('signet');
    expect(await net({ SWARMPAY_NETWORK: 'testnet' })).toBe('testnet');
    expect(await net({ SWARMPAY_NETWORK: 'testnet' }, '--network', 'mainnet')).toBe('mainnet');
  });

  test('the fee rate: --fee-rate over SWARMPAY_FEE_RATE over fee-rate= ([network] over the top) over 2 on regtest; elsewhere required; each may be fractional', () => {
    const rate = (o: { network?: 'signet' | 'testnet' } = {}, given?: string) => feeRateFor(new Environment({ datadir: dir, ...o }), given).toString();
    expect(rate()).toBe('2');
    conf('fee-rate=4\n[regtest]\nfee-rate=5.5\n[signet]\nfee-rate=6.125\n');
    expect(rate()).toBe('5.5');
    expect(rate({ network: 'signet' })).toBe('6.125');
    expect(rate({ network: 'testnet' })).toBe('4');
    process.env.SWARMPAY_FEE_RATE = '7.25';
    expect(rate()).toBe('7.25');
    expect(rate({}, '8.5')).toBe('8.5');
    process.env.SWARMPAY_FEE_RATE = '7.2501';
    expect(() => rate()).toThrow(/SWARMPAY_FEE_RATE/);
    process.env.SWARMPAY_FEE_RATE = 'lots';
    expect(() => feeRateFor(new Environment({ datadir: dir }), undefined)).toThrow(/SWARMPAY_FEE_RATE/);
    delete process.env.SWARMPAY_FEE_RATE;
    conf('');
    let err: unknown;
    try {
      feeRateFor(new Environment({ datadir: dir, network: 'mainnet' }), undefined);
    } catch (e) {
      err = e;
    }
    expect(isSwarmpayError(err, 'FEE_RATE_REQUIRED')).toBe(true);
  });

  test('rpc-url, rpc-cookie, chain and tpm: option over variable over swarmpay.conf over config.json', () => {
    mkdirSync(path.join(dir, 'regtest'));
    writeFileSync(path.join(dir, 'regtest', 'config.json'), JSON.stringify({ chain: 'btcd', rpcUrl: 'http://127.0.0.1:1/', rpcCookie: '/json/cookie' }));
    const env = (o = {}) => new Environment({ datadir: dir, ...o });
    expect(env().setting('rpc-url')).toEqual({ value: 'http://127.0.0.1:1/', source: 'config.json', where: path.join(dir, 'regtest', 'config.json') });
    expect(env().chainKind).toBe('btcd');
    conf('rpc-url=http://127.0.0.1:2/\nrpc-cookie=cookie\nchain=bitcoind\n');
    expect(env().setting('rpc-url')).toEqual({ value: 'http://127.0.0.1:2/', source: 'swarmpay.conf', where: `${path.join(dir, 'swarmpay.conf')}:1` });
    expect(env().setting('rpc-cookie')?.value).toBe(path.join(dir, 'cookie')); // relative to the datadir, as in bitcoin.conf
    expect(env().chainKind).toBe('bitcoind');
    process.env.SWARMPAY_RPC_URL = 'http://127.0.0.1:3/';
    process.env.SWARMPAY_CHAIN = 'btcd';
    process.env.SWARMPAY_TPM = 'none';
    expect(env().setting('rpc-url')).toEqual({ value: 'http://127.0.0.1:3/', source: 'environment', where: 'SWARMPAY_RPC_URL' });
    expect(env().chainKind).toBe('btcd');
    expect(env().tpmSpec).toEqual({ kind: 'none' });
    expect(env({ rpcUrl: 'http://127.0.0.1:4/', tpm: 'swtpm:127.0.0.1:2321' }).setting('rpc-url')?.value).toBe('http://127.0.0.1:4/');
    expect(env({ tpm: 'swtpm:127.0.0.1:2321' }).tpmSpec).toEqual({ kind: 'swtpm', host: '127.0.0.1', port: 2321 });
  });

  test.each([
    ['fee-rate=abc\n', 1, /fee rate "abc"/],
    ['fee-rate=2.5001\n', 1, /fee rate "2.5001"/],
    ['fee-rate=0.5\n', 1, /0\.5 sat\/vB is below the relay minimum of 1 sat\/vB/],
    ['# ok\n\nnetwork=regtest\nrpc_url=http://x/\n', 4, /unknown key "rpc_url"/],
    ['[moonnet]\n', 1, /\[moonnet\] is not a network/],
    ['chain bitcoind\n', 1, /not key=value/],
    ['[signet]\nnetwork=signet\n', 2, /network= inside a \[section\]/],
    ['tpm=chip\n', 1, /"chip" is not a TPM/],
    ['[regtest]\nchain=btcd\nchain=bitcoind\n', 3, /chain is set twice/],
    ['[signet]\nfee-rate=0\n', 2, /below the relay minimum/], // checked even when another network is in use
  ])('a bad line is INVALID_FILE naming FILE:LINE, and nothing is written: %j', async (text, line, why) => {
    conf(text);
    const r = await swarmpay(['--datadir', dir, 'wallet', 'create', '--passphrase-file', '/dev/null']);
    expect([r.code, r.json.error.code]).toEqual([2, 'INVALID_FILE']);
    expect(r.json.error.message).toContain(`${path.join(dir, 'swarmpay.conf')}:${line}:`);
    expect(r.json.error.message).toMatch(why);
    expect(existsSync(path.join(dir, 'regtest'))).toBe(false);
  });

  test('an environment variable is named when it is bad', async () => {
    const r = await swarmpay(['--datadir', dir, 'tpm', 'status'], { SWARMPAY_TPM: 'chip' });
    expect([r.code, r.json.error.code]).toEqual([1, 'USAGE']);
    expect(r.json.error.message).toContain('SWARMPAY_TPM');
  });
});
