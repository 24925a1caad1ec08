/**
 * A stranger drives the datadir's TPM into dictionary-attack lockout (for real: tpm2-tools
 * guessing a password of their own object) and tries to advance the wallet's anti-rollback
 * counter: neither locks the wallet out. Its sealed key is noDA (there is nothing to guess)
 * and its counter needs an auth only the wallet knows.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { swarmpay } from './helpers/cli.js';
import { tempDir } from './helpers/tmp.js';
import { requireTpm2Tools, tpm2 } from './helpers/tpm2-tools.js';
import { failure } from './helpers/expect.js';

test('a stranger\'s lockout and a stranger advancing the counter do not lock the wallet out', async () => {
  await requireTpm2Tools();
  const tmp = tempDir();
  const dir = path.join(tmp.dir, 'd');
  const run = (...args: string[]) => swarmpay(['--datadir', dir, ...args]);
  try {
    const pass = path.join(tmp.dir, 'pass');
    writeFileSync(pass, 'a good long passphrase');
    const started = await run('node', 'start');
    expect(started.code).toBe(0);
    const tcti = `swtpm:host=${started.json.tpm.host},port=${started.json.tpm.port}`;
    expect((await run('wallet', 'create', '--mnemonic-file', path.join(tmp.dir, 'words'), '--passphrase-file', pass)).code).toBe(0);
    expect((await run('tpm', 'provision', '--passphrase-file', pass)).code).toBe(0);
    const to = (await run('wallet', 'address')).json.address;
    expect((await run('node', 'mine', '1', '--to', to)).code).toBe(0);

    const t = (cmd: string, ...args: string[]) => tpm2(tcti, tmp.dir, cmd, ...args);
    await t('tpm2_dictionarylockout', '--setup-parameters', '--max-tries=2', '--recovery-time=600', '--lockout-recovery-time=1200');
    writeFileSync(path.join(tmp.dir, 'victim.bin'), 'not for you');
    await t('tpm2_createprimary', '-C', 'o', '-c', 'prim.ctx');
    await t('tpm2_create', '-C', 'prim.ctx', '-p', 'right', '-i', 'victim.bin', '-u', 'victim.pub', '-r', 'victim.priv');
    await t('tpm2_load', '-C', 'prim.ctx', '-u', 'victim.pub', '-r', 'victim.priv', '-c', 'victim.ctx');
    for (let i = 0; i < 3; i++) await failure(t('tpm2_unseal', '-c', 'victim.ctx', '-p', 'wrong'));

    const status = await run('tpm', 'status');
    expect(status.json.lockout.failedTries).toBeGreaterThanOrEqual(status.json.lockout.maxTries);

    expect((await run('wallet', 'send', to, '10000')).code).toBe(0);

    // The counter: a stranger without its auth is refused by the TPM, and the wallet still opens.
    const counter = status.json.keystore.counterIndex as string;
    const before = (await run('tpm', 'status')).json.keystore.tpmCounter;
    const e = (await failure(t('tpm2_nvincrement', '-C', counter, counter))) as { stderr: string };
    expect(e.stderr).toMatch(/0x0*9a2/i);
    expect((await run('tpm', 'status')).json.keystore).toMatchObject({ tpmCounter: before, counterState: 'current' });
    expect((await run('node', 'mine', '1')).code).toBe(0);
    expect((await run('wallet', 'send', to, '10000')).code).toBe(0);
  } finally {
    await run('node', 'stop');
    tmp.remove();
  }
});
