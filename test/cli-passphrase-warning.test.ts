/**
 * The warning that only a passphrase guards a keystore, where it matters and once: at
 * `wallet create` and before a command spends or locks coins, never on a read, a server, a
 * close or `tpm provision` (the way out it names). With a TPM on the device it names that
 * TPM and `swarmpay tpm provision`; without one it says none was found.
 */
import path from 'node:path';
import { writeFileSync } from 'node:fs';
import { swarmpay, type CliResult } from './helpers/cli.js';
import { stopChild, type Server } from './helpers/server.js';
import { startTwoDatadirs, type TwoDatadirs } from './helpers/two-datadirs.js';

const WARNING = /warning: only a passphrase protects this keystore/g;
const warnings = (r: CliResult) => (r.stderr.match(WARNING) ?? []).length;
const NO_TPM = 'no TPM was found (see --tpm): on a device with one, `swarmpay tpm provision` seals it';

describe('the passphrase-only warning', () => {
  let dd: TwoDatadirs;
  let server: Server;
  /** The software TPM `node start` runs beside the node. */
  let tpm: string;
  const a = (...args: string[]) => dd.a(...args);
  const b = (...args: string[]) => dd.b(...args);
  const ok = (r: CliResult) => {
    expect({ code: r.code, out: r.code === 0 ? '' : r.stdout + r.stderr }).toEqual({ code: 0, out: '' });
    return r;
  };

  beforeAll(async () => {
    dd = await startTwoDatadirs();
    server = await dd.serve();
    const status = (await a('node', 'status')).json;
    tpm = `swtpm:${status.tpm.host}:${status.tpm.port}`;
  });
  afterAll(async () => {
    if (server) await stopChild(server.child);
    await dd?.stop();
  });

  test('`wallet create` warns once: with a TPM there, naming it and `swarmpay tpm provision`; without, that none was found', async () => {
    const create = (name: string, tpmArg: string) =>
      swarmpay(['--datadir', path.join(dd.dir, name), '--tpm', tpmArg, 'wallet', 'create', '--mnemonic-file', path.join(dd.dir, `${name}.words`), '--passphrase-file', dd.pass]);
    const withTpm = ok(await create('with-tpm', tpm));
    expect(warnings(withTpm)).toBe(1);
    expect(withTpm.stderr).toContain(`this device has a TPM (${tpm}): \`swarmpay tpm provision\` seals the keystore to it`);
    expect(withTpm.stderr).not.toMatch(/on a device with/);
    const without = ok(await create('without-tpm', 'none'));
    expect(warnings(without)).toBe(1);
    expect(without.stderr).toContain(NO_TPM);
  });

  test('off regtest, `auto` never takes the software TPM `node start` runs: the warning names none, and `tpm status` finds none', async () => {
    // dd.a's datadir runs the regtest node and its swtpm; a signet wallet in it must not be sealed to that.
    const signet = ok(await swarmpay(['--datadir', dd.payer, '--network', 'signet', 'wallet', 'create', '--mnemonic-file', path.join(dd.dir, 'signet.words'), '--passphrase-file', dd.pass]));
    expect(signet.stderr).toContain(NO_TPM);
    expect(signet.stderr).not.toContain('swtpm:');
    const status = await swarmpay(['--datadir', dd.payer, '--network', 'signet', 'tpm', 'status']);
    expect(JSON.stringify(status.json)).not.toContain('swtpm');
  });

  test('commands that spend or lock coins warn once each; reads, servers, offers and closes never', async () => {
    const seen: Record<string, number> = {};
    const run = async (name: string, r: Promise<CliResult>) => {
      const done = ok(await r);
      seen[name] = warnings(done);
      return done;
    };
    const pass = ['--passphrase-file', dd.pass];
    const to = (await a('wallet', 'address', '--new')).json.address as string;
    const sent = await run('wallet send', a('wallet', 'send', to, '10000', ...pass));
    expect(sent.stderr).toContain(NO_TPM);
    await run('wallet bump', a('wallet', 'bump', sent.json.txid, '--fee-rate', '5', ...pass));
    await dd.mine(); // the change, confirmed, funds the channel
    const opened = await run('channel open', a('channel', 'open', '--peer', `127.0.0.1:${server.port}`, '--peer-key', server.key, '--capacity', '100000', ...pass));
    const id = opened.json.id as string;
    await dd.mine();
    await run('channel pay', a('channel', 'pay', id, '1000', '--count', '3', ...pass));
    await run('channel list', a('channel', 'list', ...pass));
    await run('channel show', a('channel', 'show', id, ...pass));
    await run('wallet balance', a('wallet', 'balance'));
    await run('info', a('info', ...pass));
    const item = path.join(dd.dir, 'item.bin');
    writeFileSync(item, 'an item for sale');
    const offerFile = path.join(dd.dir, 'item.offer.json');
    await run('escrow offer (seller)', b('escrow', 'offer', '--item', item, '--price', '50000', '--out', offerFile, ...pass));
    await run('escrow accept', a('escrow', 'accept', offerFile, '--max-price', '50000', ...pass));
    await run('escrow list', a('escrow', 'list', ...pass));
    await run('channel close', a('channel', 'close', id, ...pass));
    expect(seen).toEqual({
      'wallet send': 1,
      'wallet bump': 1,
      'channel open': 1,
      'channel pay': 1,
      'channel list': 0,
      'channel show': 0,
      'wallet balance': 0,
      info: 0,
      'escrow offer (seller)': 0,
      'escrow accept': 1,
      'escrow list': 0,
      'channel close': 0,
    });
  });

  test('`tpm provision` does not warn (it is the way out), and a sealed keystore never does', async () => {
    const provisioned = ok(await swarmpay(['--datadir', dd.payer, '--tpm', tpm, 'tpm', 'provision', '--passphrase-file', dd.pass]));
    expect(provisioned.json).toMatchObject({ provisioned: true, migrated: true });
    expect(warnings(provisioned)).toBe(0);
    const to = (await a('wallet', 'address', '--new')).json.address as string;
    expect(warnings(ok(await swarmpay(['--datadir', dd.payer, '--tpm', tpm, 'wallet', 'send', to, '10000'])))).toBe(0);
  });
});
