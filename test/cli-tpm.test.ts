/**
 * The TPM-sealed keystore from the command line: provisioning moves a passphrase wallet
 * under a real swtpm, and rolled-back files, changed PCRs, another TPM, a missing TPM
 * and a crash between file write and counter increment are each handled as documented.
 */
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { snapshot, swarmpay, type CliResult } from './helpers/cli.js';
import { startServer } from './helpers/server.js';
import { tempDir } from './helpers/tmp.js';
import { startTestTpm, type TestTpm } from './helpers/swtpm.js';
import { Tpm } from '../src/tpm/tpm.js';
import { PCR_Extend } from '../src/tpm/commands.js';
import { authorize, passwordSession } from '../src/tpm/execute.js';
import { TPM_ALG } from '../src/tpm/constants.js';

describe('tpm CLI and the TPM-sealed keystore', () => {
  let tmp: ReturnType<typeof tempDir>;
  let dir: string;
  let passFile: string;
  let tpmArg: string;
  let other: TestTpm;
  const run = (...args: string[]) => swarmpay(['--datadir', dir, ...args]);
  const ks = () => path.join(dir, 'regtest', 'keystore.json');
  const refused = (r: CliResult, exit: number, code: string) => expect({ exit: r.code, code: r.json?.error?.code }).toEqual({ exit, code });
  const fund = async () => {
    const addr = (await run('wallet', 'address')).json.address;
    expect((await run('node', 'mine', '1', '--to', addr)).code).toBe(0);
    return addr as string;
  };
  const send = (to: string, ...more: string[]) => run('wallet', 'send', to, '10000', ...more);

  beforeAll(async () => {
    tmp = tempDir();
    dir = path.join(tmp.dir, 'd');
    passFile = path.join(tmp.dir, 'pass');
    writeFileSync(passFile, 'a good long passphrase');
    const started = await run('node', 'start');
    expect(started.code).toBe(0);
    expect(started.json.tpm).toMatchObject({ host: '127.0.0.1' });
    tpmArg = `swtpm:${started.json.tpm.host}:${started.json.tpm.port}`;
    expect((await run('wallet', 'create', '--mnemonic-file', path.join(tmp.dir, 'words'), '--passphrase-file', passFile)).code).toBe(0);
    other = await startTestTpm();
  });
  afterAll(async () => {
    await run('node', 'stop');
    await other?.stop();
    tmp?.remove();
  });

  test('status before provisioning: the TPM is found, the keystore is passphrase-only', async () => {
    const r = await run('tpm', 'status');
    expect(r.code).toBe(0);
    expect(r.json).toMatchObject({ manufacturer: 'IBM', attestation: 'available', keystore: { exists: true, protector: 'passphrase', sealed: false } });
    expect(r.json.akName).toMatch(/^000b[0-9a-f]{64}$/);
  });

  test('without a TPM: status says attestation is unavailable, and warns', async () => {
    const r = await run('--tpm', 'none', 'tpm', 'status');
    expect(r.code).toBe(0);
    expect(r.json).toMatchObject({ tpm: null, attestation: 'unavailable' });
    expect(r.stderr).toMatch(/warning: no TPM/);
  });

  test('a passphrase keystore warns before it spends, naming the TPM here', async () => {
    const to = await fund();
    const r = await send(to, '--passphrase-file', passFile);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/warning: only a passphrase protects this keystore: .*this device has a TPM \(swtpm:127\.0\.0\.1:\d+\): `swarmpay tpm provision` seals/);
  });

  test('provision moves the wallet under the TPM without losing anything', async () => {
    const before = await run('wallet', 'info');
    const r = await run('tpm', 'provision', '--passphrase-file', passFile);
    expect(r.code).toBe(0);
    expect(r.json).toMatchObject({ provisioned: true, migrated: true, pcrs: [], srkPersisted: true });
    expect(before.json.protector).toBe('passphrase');
    expect((await run('wallet', 'info')).json).toMatchObject({ xpub: before.json.xpub, protector: 'tpm' });
    expect(readFileSync(ks(), 'utf8')).not.toContain('"passphrase"');
    // No passphrase any more: the TPM unseals the key.
    const to = await fund();
    const sent = await send(to);
    expect(sent.code).toBe(0);
    expect(sent.stderr).not.toMatch(/only a passphrase/);
    const status = await run('tpm', 'status');
    expect(status.json.keystore).toMatchObject({ protector: 'tpm', sealed: true });
    expect(status.json.keystore.fileCounter).toBe(status.json.keystore.tpmCounter);
  });

  test('provisioning again needs --force', async () => {
    const before = snapshot(path.join(dir, 'regtest'));
    refused(await run('tpm', 'provision'), 2, 'TPM_ALREADY_PROVISIONED');
    expect(snapshot(path.join(dir, 'regtest'))).toEqual(before);
  });

  test('each wallet open advances the counter; a rolled-back copy is refused and left as it is', async () => {
    const to = await fund();
    const old = readFileSync(ks());
    const c0 = BigInt((await run('tpm', 'status')).json.keystore.tpmCounter);
    expect((await send(to)).code).toBe(0);
    expect((await run('node', 'mine', '1')).code).toBe(0);
    expect(BigInt((await run('tpm', 'status')).json.keystore.tpmCounter)).toBe(c0 + 1n);
    const current = readFileSync(ks());
    writeFileSync(ks(), old);
    const r = await send(to);
    refused(r, 5, 'ROLLBACK_DETECTED');
    expect(r.json.error.message).toMatch(/rolled back/);
    expect(readFileSync(ks())).toEqual(old);
    // tpm status says so too: the same error, the whole status in its details.
    const st = await run('tpm', 'status');
    refused(st, 5, 'ROLLBACK_DETECTED');
    expect(st.json.error.details.status.keystore).toMatchObject({ counterState: 'rolled-back', fileCounter: c0.toString(), tpmCounter: (c0 + 1n).toString() });
    writeFileSync(ks(), current);
    expect((await send(to)).code).toBe(0);
  });

  test('channel serve holds the TPM only while it uses it: other commands, and another datadir on the same TPM, work beside it', async () => {
    const server = await startServer(['--datadir', dir, 'channel', 'serve', '--listen', '127.0.0.1:0', '--poll', '1']);
    try {
      const t0 = Date.now();
      expect((await run('channel', 'list')).code).toBe(0);
      expect((await run('wallet', 'balance')).code).toBe(0);
      const dir2 = path.join(tmp.dir, 'second');
      const two = (...args: string[]) => swarmpay(['--datadir', dir2, '--tpm', tpmArg, ...args]);
      expect((await two('wallet', 'create', '--mnemonic-file', path.join(tmp.dir, 'words2'), '--passphrase-file', passFile)).code).toBe(0);
      expect((await two('tpm', 'provision', '--passphrase-file', passFile)).code).toBe(0);
      expect((await two('tpm', 'status')).json.keystore).toMatchObject({ protector: 'tpm', counterState: 'current' });
      // Each waited its turn for a moment, not for the 30 s a held connection made it wait.
      expect(Date.now() - t0).toBeLessThan(20_000);
      expect((await run('tpm', 'status')).json.keystore.counterState).toBe('current');
    } finally {
      server.child.kill('SIGTERM');
      await new Promise((r) => server.child.once('exit', r));
    }
  });

  test('a crash between the file write and the counter increment does not brick the wallet', async () => {
    const to = await fund();
    const before = (await run('tpm', 'status')).json.keystore;
    const c1 = BigInt((await run('tpm', 'status')).json.keystore.tpmCounter);
    const killed = await swarmpay(['--datadir', dir, 'wallet', 'send', to, '10000'], { SWARMPAY_FAULT: 'kill-before-counter' });
    expect(killed.code).not.toBe(0); // killed by SIGKILL
    const mid = (await run('tpm', 'status')).json.keystore;
    expect([BigInt(mid.fileCounter), BigInt(mid.tpmCounter)]).toEqual([c1 + 1n, c1]);
    // The next open finishes the interrupted checkpoint and goes on.
    expect((await send(to)).code).toBe(0);
    const after = (await run('tpm', 'status')).json.keystore;
    expect(after.fileCounter).toBe(after.tpmCounter);
    expect(BigInt(after.tpmCounter)).toBe(c1 + 2n);
    expect(before.counterIndex).toBe(after.counterIndex);
  });

  test('a keystore copied to another TPM is refused, and not changed', async () => {
    const to = await fund();
    const copy = path.join(tmp.dir, 'copy');
    mkdirSync(path.join(copy, 'regtest'), { recursive: true });
    copyFileSync(ks(), path.join(copy, 'regtest', 'keystore.json'));
    const hash = () => createHash('sha256').update(readFileSync(path.join(copy, 'regtest', 'keystore.json'))).digest('hex');
    const h0 = hash();
    const cookie = path.join(dir, 'regtest', 'node', '.cookie');
    const rpcUrl = (await run('node', 'status')).json.rpcUrl;
    const r = await swarmpay(['--datadir', copy, '--rpc-url', rpcUrl, '--rpc-cookie', cookie, '--tpm', other.arg, 'wallet', 'send', to, '10000']);
    refused(r, 5, 'TPM_WRONG_TPM');
    expect(hash()).toBe(h0);
  });

  test('no TPM for a TPM keystore, or a TPM that does not answer', async () => {
    const to = await fund();
    const before = readFileSync(ks());
    refused(await send(to, '--tpm', 'none'), 5, 'TPM_UNAVAILABLE');
    refused(await send(to, '--tpm', 'swtpm:127.0.0.1:1'), 4, 'TPM_UNREACHABLE');
    refused(await send(to, '--tpm', 'floppy:a'), 1, 'USAGE');
    expect(readFileSync(ks())).toEqual(before);
  });

  test('sealed to PCR 16: a changed PCR is refused with what to do, and nothing changes', async () => {
    const r = await run('tpm', 'provision', '--force', '--pcrs', '16');
    expect(r.code).toBe(0);
    expect(r.json).toMatchObject({ migrated: false, pcrs: [16] });
    const to = await fund();
    expect((await send(to)).code).toBe(0);
    await run('node', 'mine', '1');
    const before = readFileSync(ks());
    const [host, port] = tpmArg.split(':').slice(1);
    const tpm = await Tpm.open({ kind: 'swtpm', host: host!, port: Number(port) });
    try {
      await tpm.run(PCR_Extend(authorize(16, passwordSession()), TPM_ALG.SHA256, Buffer.alloc(32, 0xab)));
    } finally {
      await tpm.close();
    }
    const refusedSend = await send(to);
    refused(refusedSend, 5, 'TPM_POLICY_FAIL');
    expect(refusedSend.json.error.hint).toMatch(/mnemonic/);
    expect(readFileSync(ks())).toEqual(before);
  });

  test('bad --pcrs is a usage error', async () => {
    refused(await run('tpm', 'provision', '--force', '--pcrs', '7,99'), 1, 'USAGE');
  });

  describe('attest and verify', () => {
    const nonce = 'a1'.repeat(32);
    let doc: string;
    let pem: string;
    beforeAll(async () => {
      doc = path.join(tmp.dir, 'quote.json');
      const r = await run('tpm', 'attest', '--nonce', nonce, '--pcrs', '0,7,16', '--out', doc);
      expect(r.code).toBe(0);
      expect(r.json.pcrs).toEqual([0, 7, 16]);
      pem = path.join(tmp.dir, 'ak.pem');
      writeFileSync(pem, JSON.parse(readFileSync(doc, 'utf8')).akPublic);
    });

    test('a quote verifies with its nonce and the pinned AK', async () => {
      const r = await run('tpm', 'verify', doc, '--nonce', nonce, '--ak', pem);
      expect(r.code).toBe(0);
      expect(r.json).toMatchObject({ valid: true, akPinned: true });
      expect(Object.keys(r.json.pcrs)).toEqual(['0', '7', '16']);
    });

    test('an allow list of the PCRs as they are verifies; another value is refused', async () => {
      const values = JSON.parse(readFileSync(doc, 'utf8')).pcrs.values;
      const good = path.join(tmp.dir, 'good.json');
      writeFileSync(good, JSON.stringify({ 7: values['7'], 16: [values['16'], 'ff'.repeat(32)] }));
      expect((await run('tpm', 'verify', doc, '--nonce', nonce, '--expect-pcrs', good)).code).toBe(0);
      const bad = path.join(tmp.dir, 'bad.json');
      writeFileSync(bad, JSON.stringify({ 7: 'ff'.repeat(32) }));
      refused(await run('tpm', 'verify', doc, '--nonce', nonce, '--expect-pcrs', bad), 2, 'ATTESTATION_INVALID');
    });

    test('another nonce, a tampered document, the AK of another TPM, garbage: each refused with exit 2', async () => {
      refused(await run('tpm', 'verify', doc, '--nonce', 'b2'.repeat(32)), 2, 'ATTESTATION_INVALID');
      const tampered = path.join(tmp.dir, 'tampered.json');
      const d = JSON.parse(readFileSync(doc, 'utf8'));
      d.pcrs.values['7'] = '11'.repeat(32);
      writeFileSync(tampered, JSON.stringify(d));
      refused(await run('tpm', 'verify', tampered, '--nonce', nonce), 2, 'ATTESTATION_INVALID');
      const otherDoc = path.join(tmp.dir, 'other.json');
      expect((await run('--tpm', other.arg, 'tpm', 'attest', '--nonce', nonce, '--out', otherDoc)).code).toBe(0);
      refused(await run('tpm', 'verify', otherDoc, '--nonce', nonce, '--ak', pem), 2, 'ATTESTATION_INVALID');
      const garbage = path.join(tmp.dir, 'garbage.json');
      writeFileSync(garbage, 'not json at all');
      refused(await run('tpm', 'verify', garbage, '--nonce', nonce), 2, 'ATTESTATION_INVALID');
      writeFileSync(garbage, '{"format": "swarmpay-attestation", "version": 1}');
      refused(await run('tpm', 'verify', garbage, '--nonce', nonce), 2, 'ATTESTATION_INVALID');
      refused(await run('tpm', 'verify', path.join(tmp.dir, 'missing.json'), '--nonce', nonce), 2, 'INVALID_FILE');
    });

    test('bad arguments and no TPM', async () => {
      refused(await run('tpm', 'attest', '--nonce', 'xyz'), 1, 'USAGE');
      refused(await run('tpm', 'attest', '--nonce', 'aa'.repeat(65)), 1, 'USAGE');
      refused(await run('tpm', 'attest'), 1, 'USAGE');
      refused(await run('--tpm', 'none', 'tpm', 'attest', '--nonce', nonce), 5, 'TPM_UNAVAILABLE');
    });
  });
});
