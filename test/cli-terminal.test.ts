/**
 * swarmpay at a terminal, as an operator types at it: a real pseudo-terminal (util-linux
 * `script`) for stdin and stderr, stdout piped or in a file as a script would have it.
 * Prompts are drawn on the terminal and never on stdout; Ctrl-C at one ends quietly (130);
 * `channel open` shows what it locks and asks, and without a terminal wants --yes.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ROOT, snapshot, swarmpay } from './helpers/cli.js';
import { atTerminal, cmd } from './helpers/terminal.js';
import { stopChild, type Server } from './helpers/server.js';
import { PASSPHRASE, startTwoDatadirs, type TwoDatadirs } from './helpers/two-datadirs.js';

const BIN = path.join(ROOT, 'bin', 'swarmpay');

describe('at a terminal: prompts on stderr, Ctrl-C, the question before a channel opens', () => {
  let dd: TwoDatadirs;
  let payer: string;
  let pass: string;
  let server: Server;
  const a = (...args: string[]) => dd.a(...args);

  beforeAll(async () => {
    dd = await startTwoDatadirs();
    ({ payer, pass } = dd);
    server = await dd.serve();
  });
  afterAll(async () => {
    if (server) await stopChild(server.child);
    await dd?.stop();
  });

  test('the passphrase is asked on the terminal with stdout in a file, and the file holds the JSON alone', async () => {
    const out = path.join(dd.dir, 'created.json');
    const t = atTerminal(`${cmd(['--datadir', path.join(dd.dir, 'fresh'), '--tpm', 'none', 'wallet', 'create', '--mnemonic-file', path.join(dd.dir, 'fresh.words'), '--json'])} > '${out}'`);
    await t.type('Keystore passphrase:', `${PASSPHRASE}\r`);
    await t.type('Repeat the passphrase:', `${PASSPHRASE}\r`);
    expect(await t.exit).toBe(0);
    expect(JSON.parse(readFileSync(out, 'utf8'))).toMatchObject({ network: 'regtest', restored: false });
  });

  test('a reader that closes stdout (`| true`) ends no command with EPIPE and a stack', async () => {
    const t = atTerminal(`set -o pipefail; ${cmd(['--datadir', path.join(dd.dir, 'piped'), '--tpm', 'none', 'wallet', 'create', '--mnemonic-file', path.join(dd.dir, 'piped.words'), '--json'])} | true`);
    await t.type('Keystore passphrase:', `${PASSPHRASE}\r`);
    await t.type('Repeat the passphrase:', `${PASSPHRASE}\r`);
    expect(await t.exit).toBe(0);
    expect(t.screen()).not.toMatch(/EPIPE|\n\s+at /);
    // It did what it was asked: the wallet is there.
    expect((await swarmpay(['--datadir', path.join(dd.dir, 'piped'), '--tpm', 'none', 'wallet', 'info'])).code).toBe(0);
  });

  test('Ctrl-C at the passphrase prompt: exit 130 and one line, no stack, no JSON error', async () => {
    // stdout on the terminal too: whatever goes to either stream shows.
    const t = atTerminal(cmd(['--datadir', payer, '--tpm', 'none', 'channel', 'list', '--json']));
    await t.type('Keystore passphrase:', '\x03');
    expect(await t.exit).toBe(130);
    const after = t.screen().slice(t.screen().indexOf('Keystore passphrase:') + 'Keystore passphrase:'.length);
    expect(after.split('\n').map((l) => l.trim()).filter((l) => l !== '')).toEqual(['cancelled; nothing was done']);
  });

  test('`channel open` shows the payee, capacity and fee and asks: "n" stores and pays nothing, "y" opens', async () => {
    const open = (out: string) => atTerminal(`${cmd(['--datadir', payer, '--tpm', 'none', 'channel', 'open', '--peer', `127.0.0.1:${server.port}`, '--peer-key', server.key, '--capacity', '100000', '--passphrase-file', pass, '--json'])} > '${out}'`);
    const balance = async () => (await a('wallet', 'balance')).json;
    const before = { files: snapshot(payer), balance: await balance() };

    const no = open(path.join(dd.dir, 'no.json'));
    await no.type('Lock 100000 sats', 'n\r');
    expect(await no.exit).toBe(1);
    const asked = no.screen();
    expect(asked).toContain(`127.0.0.1:${server.port}, key ${server.key}`);
    expect(asked).toMatch(/capacity: 100000 sats, locked until height \d+ \(144 blocks\)/);
    expect(asked).toMatch(/fee: +\d+ sats for the funding \(2 sat\/vB\)/);
    expect(JSON.parse(readFileSync(path.join(dd.dir, 'no.json'), 'utf8')).error).toMatchObject({ code: 'USAGE', message: 'cancelled; nothing was paid' });
    expect(snapshot(payer)).toEqual(before.files);
    expect(await balance()).toEqual(before.balance);
    expect((await a('channel', 'list', '--passphrase-file', pass)).json.channels).toEqual([]);

    const yes = open(path.join(dd.dir, 'yes.json'));
    await yes.type('Lock 100000 sats', 'y\r');
    expect(await yes.exit).toBe(0);
    expect(JSON.parse(readFileSync(path.join(dd.dir, 'yes.json'), 'utf8'))).toMatchObject({ role: 'payer', status: 'open', capacity: 100000 });
  });

  test('`channel open` without a terminal and without --yes is refused before the passphrase, and opens nothing', async () => {
    const before = snapshot(payer);
    const r = await new Promise<{ code: number; stdout: string }>((resolve) =>
      execFile(BIN, ['--json', '--datadir', payer, '--tpm', 'none', 'channel', 'open', '--peer', `127.0.0.1:${server.port}`, '--capacity', '100000'], (err, stdout) =>
        resolve({ code: err ? Number(err.code) : 0, stdout }),
      ),
    );
    expect({ code: r.code, error: JSON.parse(r.stdout).error.code }).toEqual({ code: 1, error: 'USAGE' });
    expect(JSON.parse(r.stdout).error.hint).toMatch(/--yes/);
    expect(snapshot(payer)).toEqual(before);
  });
});
