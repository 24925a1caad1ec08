/**
 * A TPM in dictionary-attack lockout, met from the command line: the wallet refuses with
 * TPM_LOCKOUT (exit 5) and what to do, and the keystore is left exactly as it was. The
 * lockout is provoked for real, with tpm2-tools guessing a password on the datadir's swtpm.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { swarmpay } from './helpers/cli.js';
import { tempDir } from './helpers/tmp.js';
import { requireTpm2Tools, tpm2 } from './helpers/tpm2-tools.js';
import { failure } from './helpers/expect.js';

test('wallet send on a locked-out TPM: TPM_LOCKOUT, exit 5, nothing changed', async () => {
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
    // Not PCR-bound: unsealed with a (empty) password, the key is DA-protected.
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

    const ks = path.join(dir, 'regtest', 'keystore.json');
    const before = readFileSync(ks);
    const r = await run('wallet', 'send', to, '10000');
    expect([r.code, r.json.error.code]).toEqual([5, 'TPM_LOCKOUT']);
    expect(r.json.error.hint).toMatch(/lockout/);
    expect(readFileSync(ks)).toEqual(before);
  } finally {
    await run('node', 'stop');
    tmp.remove();
  }
});
