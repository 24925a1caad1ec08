/** `swarmpay node …` as a user runs it, in its own datadir with its own btcd. */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { swarmpay } from './helpers/cli.js';
import { tempDir } from './helpers/tmp.js';
import { isAlive } from '../src/util/process.js';
import { SEGWIT_ACTIVE_HEIGHT } from '../src/chain/embedded-node.js';

describe('node CLI', () => {
  let tmp: ReturnType<typeof tempDir>;
  let dir: string;
  const run = (...args: string[]) => swarmpay(['--datadir', dir, ...args]);
  beforeAll(() => {
    tmp = tempDir();
    dir = path.join(tmp.dir, 'd');
  });
  afterAll(async () => {
    await run('node', 'stop');
    tmp.remove();
  });

  test('status before start: not running, exit 0', async () => {
    const r = await run('node', 'status');
    expect(r.code).toBe(0);
    expect(r.json).toMatchObject({ running: false, height: null });
  });

  test('start, start again, mine, stop', async () => {
    const started = await run('node', 'start');
    expect(started.code).toBe(0);
    expect(started.json).toMatchObject({ running: true, alreadyRunning: false, impl: 'btcd', tpm: { host: '127.0.0.1' } });
    expect(started.json.tpm.ctrlPort).toBe(started.json.tpm.port + 1); // where tpm2-tools' swtpm TCTI looks
    expect(started.json.height).toBeGreaterThanOrEqual(SEGWIT_ACTIVE_HEIGHT);
    expect(started.json.rpcUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);

    const again = await run('node', 'start');
    expect(again.json).toMatchObject({ alreadyRunning: true, pid: started.json.pid });

    const mined = await run('node', 'mine', '2');
    expect(mined.json).toMatchObject({ blocks: 2, height: started.json.height + 2, paid: null });

    const status = await run('node', 'status');
    expect(status.json).toMatchObject({ running: true, pid: started.json.pid, height: started.json.height + 2 });

    expect(status.json.tpm).toEqual({ host: '127.0.0.1', port: started.json.tpm.port, pid: started.json.tpm.pid });

    const stopped = await run('node', 'stop');
    expect(stopped.json).toEqual({ stopped: true, tpmStopped: true });
    expect(isAlive(started.json.pid)).toBe(false);
    expect(isAlive(started.json.tpm.pid)).toBe(false);
    expect((await run('node', 'status')).json).toMatchObject({ running: false, tpm: null });
    expect((await run('node', 'stop')).json).toEqual({ stopped: false, tpmStopped: false });
  });

  test('btcd discards its regtest chain on restart: the next start is a fresh chain at activation height', async () => {
    await run('node', 'start');
    await run('node', 'mine', '1');
    const stopped = await run('node', 'stop');
    expect(stopped.json).toEqual({ stopped: true, tpmStopped: true });
    const second = await run('node', 'start');
    expect(second.json.height).toBe(SEGWIT_ACTIVE_HEIGHT);
    await run('node', 'stop');
  });

  test('a stale pid file never makes us signal another process', async () => {
    const other = path.join(tmp.dir, 'stale');
    mkdirSync(path.join(other, 'regtest', 'node'), { recursive: true });
    // Our own test process stands in for an unrelated process that reused the pid.
    writeFileSync(path.join(other, 'regtest', 'node', 'node.json'), JSON.stringify({ impl: 'btcd', pid: process.pid, rpcUrl: 'http://127.0.0.1:1/', rpcPort: 1, p2pPort: 2, cookieFile: path.join(other, 'c'), miningAddress: '' }));
    const r = await swarmpay(['--datadir', other, 'node', 'stop']);
    expect(r.json).toEqual({ stopped: false, tpmStopped: false });
    expect(isAlive(process.pid)).toBe(true);
    const bal = await swarmpay(['--datadir', other, 'wallet', 'balance']);
    expect([bal.code, bal.json.error.code]).toEqual([4, 'NODE_UNREACHABLE']);
  });

  test.each([
    [['node', 'mine', '0'], 1, 'USAGE'],
    [['node', 'mine', 'ten'], 1, 'USAGE'],
    [['node', 'mine', '1001'], 1, 'USAGE'],
    [['--network', 'testnet', 'node', 'start'], 2, 'NOT_REGTEST'],
    [['node', 'start', '--impl', 'geth'], 1, 'USAGE'],
  ])('%j is refused', async (args, exit, code) => {
    const r = await run(...(args as string[]));
    expect([r.code, r.json.error.code]).toEqual([exit, code]);
  });

  test('no btcd installed: NODE_NOT_INSTALLED with what to run', async () => {
    const empty = path.join(tmp.dir, 'nobin');
    mkdirSync(empty);
    const r = await swarmpay(['--datadir', path.join(tmp.dir, 'nobtcd'), 'node', 'start'], { PATH: path.dirname(process.execPath), GOPATH: empty, GOBIN: empty, HOME: empty, SWARMPAY_BTCD: '' });
    expect([r.code, r.json.error.code]).toEqual([3, 'NODE_NOT_INSTALLED']);
    expect(r.json.error.hint).toMatch(/go install github.com\/btcsuite\/btcd/);
  });
});
