/** `swarmpay info`: every part in one document, a part that cannot be read shown as such, never the whole command failing. */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { ROOT, swarmpay } from './helpers/cli.js';
import { tempDir } from './helpers/tmp.js';
import { startTestNode, type TestNode } from './helpers/node.js';
import { TEST_PASSPHRASE, testWallet } from './helpers/wallets.js';
import { SEGWIT_ACTIVE_HEIGHT } from '../src/chain/embedded-node.js';

describe('swarmpay info', () => {
  let node: TestNode;
  let tmp: ReturnType<typeof tempDir>;
  let dir: string;
  let fingerprint: string;
  let passFile: string;

  beforeAll(async () => {
    node = await startTestNode();
    tmp = tempDir();
    dir = path.join(tmp.dir, 'w');
    const w = await testWallet(dir);
    fingerprint = String(w.session.header.public.fingerprint);
    passFile = path.join(tmp.dir, 'pass');
    writeFileSync(passFile, `${TEST_PASSPHRASE}\n`);
  });
  afterAll(async () => {
    await node?.stop();
    tmp?.remove();
  });

  test('nothing in the datadir: each part says so, exit 0', async () => {
    const r = await swarmpay(['--datadir', path.join(tmp.dir, 'empty'), '--tpm', 'none', 'info']);
    expect(r.code).toBe(0);
    expect(r.json).toEqual({
      network: 'regtest',
      datadir: path.join(tmp.dir, 'empty'),
      config: null,
      node: { state: 'unavailable', backend: 'embedded', error: { code: 'NODE_UNREACHABLE', message: expect.any(String), hint: expect.any(String) } },
      wallet: { state: 'none' },
      tpm: { state: 'none', tpm: null, keystore: { exists: false } },
      channels: { state: 'none' },
      escrows: { state: 'none' },
      cli: { start: 'snapshot', node: process.version },
    });
  });

  test('node stopped: the wallet is still shown from its xpub, balance unknown, channels locked without the passphrase', async () => {
    const r = await swarmpay(['--datadir', dir, '--tpm', 'none', 'info']);
    expect(r.code).toBe(0);
    expect(r.json).toMatchObject({
      node: { state: 'unavailable', error: { code: 'NODE_UNREACHABLE' } },
      wallet: { state: 'ready', fingerprint, protector: 'passphrase', xpub: expect.stringMatching(/^tpub/), balance: { state: 'unavailable', error: { code: 'NODE_UNREACHABLE' } } },
      tpm: { state: 'none', keystore: { exists: true, protector: 'passphrase', sealed: false } },
      channels: { state: 'locked' },
      escrows: { state: 'locked' },
    });
  });

  test('node running (reached through swarmpay.conf): height, peers, balance; the passphrase counts channels and escrows', async () => {
    writeFileSync(path.join(dir, 'swarmpay.conf'), `# the test node\n[regtest]\nchain=btcd\nrpc-url=${node.state.rpcUrl}\nrpc-cookie=${node.state.cookieFile}\ntpm=none\n`);
    const r = await swarmpay(['--datadir', dir, 'info', '--passphrase-file', passFile]);
    expect(r.code).toBe(0);
    expect(r.json).toMatchObject({
      config: path.join(dir, 'swarmpay.conf'),
      node: { state: 'running', backend: 'btcd', url: node.state.rpcUrl, height: expect.any(Number), peers: 0 },
      wallet: { state: 'ready', balance: { state: 'known', confirmed: 0, unconfirmed: 0 } },
      channels: { state: 'counted', total: 0, byStatus: {} },
      escrows: { state: 'counted', total: 0, byStatus: {} },
    });
    expect(r.json.node.height).toBeGreaterThanOrEqual(SEGWIT_ACTIVE_HEIGHT);

    // A wrong passphrase is that part's error, not the command's.
    writeFileSync(passFile + '.bad', 'not the passphrase\n');
    const bad = await swarmpay(['--datadir', dir, 'info', '--passphrase-file', passFile + '.bad']);
    expect(bad.code).toBe(0);
    expect(bad.json.channels).toMatchObject({ state: 'unavailable', error: { code: 'WRONG_PASSPHRASE' } });
    expect(bad.json.node.state).toBe('running');
  });

  test('--passphrase-file - reads the passphrase from stdin', () => {
    const r = spawnSync(path.join(ROOT, 'bin', 'swarmpay'), ['--json', '--datadir', dir, 'info', '--passphrase-file', '-'], { input: `${TEST_PASSPHRASE}\n`, encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout).channels).toEqual({ state: 'counted', total: 0, byStatus: {} });
  });

  test('the human form: one line a part', async () => {
    const r = spawnSync(path.join(ROOT, 'bin', 'swarmpay'), ['--datadir', dir, 'info'], { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^network +regtest/m);
    expect(r.stdout).toMatch(/^node +btcd at http:\/\/127\.0\.0\.1:\d+\/, height \d+, 0 peers$/m);
    expect(r.stdout).toContain(`fingerprint ${fingerprint}`);
    expect(r.stdout).toMatch(/^channels +locked/m);
  });
});
