/**
 * Sharing the embedded node with another Unix user (issue 15): the RPC password is never on a
 * command line, the cookie is shared with a group only when asked, `node credentials` hands
 * the credentials over, and a cookie we may not read says what to do. Run as root, the other
 * user is real: `nobody`, by setpriv.
 */
import { execFile, execFileSync } from 'node:child_process';
import { chmodSync, existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ROOT, swarmpay, type CliResult } from './helpers/cli.js';
import { tempDir } from './helpers/tmp.js';

const NOBODY = 65534;
const canSwitchUser = process.getuid?.() === 0 && (() => {
  try {
    execFileSync('setpriv', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

/** Runs the CLI as `nobody` in the given supplementary groups (as root), else as ourselves. */
function asOtherUser(args: string[], groups: number[] = []): Promise<CliResult> {
  const cli = [path.join(ROOT, 'bin', 'swarmpay'), '--json', '--yes', ...args];
  const [cmd, ...argv] = canSwitchUser ? ['setpriv', `--reuid=${NOBODY}`, `--regid=${NOBODY}`, groups.length ? `--groups=${groups.join(',')}` : '--clear-groups', ...cli] : cli;
  return new Promise((resolve) =>
    execFile(cmd!, argv, { env: { ...process.env, NO_COLOR: '1' } }, (err, stdout, stderr) => {
      let json: CliResult['json'];
      try {
        json = JSON.parse(stdout);
      } catch {
        json = undefined;
      }
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr, json });
    }),
  );
}

const mode = (file: string) => statSync(file).mode & 0o777;

describe('sharing the node with another user', () => {
  let tmp: ReturnType<typeof tempDir>;
  let alice: string;
  let nodeDir: string;
  const run = (...args: string[]) => swarmpay(['--datadir', alice, ...args]);
  const gid = process.getgid!();

  beforeAll(() => {
    tmp = tempDir();
    // The other user must be able to enter the test's folder, as they would a home.
    chmodSync(tmp.dir, 0o711);
    alice = path.join(tmp.dir, 'alice');
    nodeDir = path.join(alice, 'regtest', 'node');
  });
  afterAll(async () => {
    await run('node', 'stop');
    tmp.remove();
  });

  test('the RPC password is not on the running btcd\'s command line; nothing is shared by default', async () => {
    const started = await run('node', 'start');
    expect(started.code).toBe(0);
    expect(started.json.share).toBeNull();
    const password = readFileSync(started.json.rpcCookie, 'utf8').trim().split(':')[1]!;
    const argv = readFileSync(`/proc/${started.json.pid}/cmdline`, 'utf8').split('\0');
    expect(argv.some((a) => a.includes(password))).toBe(false);
    expect(argv.some((a) => /rpcpass|rpcuser/.test(a))).toBe(false);
    expect(mode(path.join(nodeDir, 'btcd.conf'))).toBe(0o600);
    expect(mode(started.json.rpcCookie)).toBe(0o600);
    for (const dir of [alice, path.dirname(nodeDir), nodeDir]) expect([dir, mode(dir)]).toEqual([dir, 0o700]);
  });

  test('another user cannot read an unshared cookie, and the hint says what to do', async () => {
    const cookie = path.join(tmp.dir, 'cookie-0000');
    writeFileSync(cookie, 'user:pass');
    chmodSync(cookie, 0o000);
    // Where we run as root, `nobody` meets the 0000 file; otherwise we do ourselves.
    const r = await asOtherUser(['--datadir', path.join(tmp.dir, 'bob0'), '--rpc-url', 'http://127.0.0.1:1/', '--rpc-cookie', cookie, 'node', 'mine', '1']);
    expect([r.code, r.json.error.code]).toEqual([4, 'RPC_AUTH']);
    expect(r.json.error.message).toContain('permission denied');
    expect(r.json.error.hint).toMatch(/node start --share-group GROUP/);
    expect(r.json.error.hint).toMatch(/node credentials --out FILE/);
  });

  test('an unknown group is refused before anything changes', async () => {
    const r = await swarmpay(['--datadir', path.join(tmp.dir, 'nogroup'), 'node', 'start', '--share-group', 'no-such-group-swarmpay']);
    expect([r.code, r.json.error.code]).toEqual([1, 'USAGE']);
    expect(existsSync(path.join(tmp.dir, 'nogroup'))).toBe(false);
  });

  test('--share-group on the running node: cookie 0640 in the group, folders 0710 in the group', async () => {
    const r = await run('node', 'start', '--share-group', String(gid));
    expect(r.code).toBe(0);
    expect(r.json).toMatchObject({ alreadyRunning: true, share: { group: String(gid), gid, closedFolder: null } });
    expect([mode(r.json.rpcCookie), statSync(r.json.rpcCookie).gid]).toEqual([0o640, gid]);
    for (const dir of [alice, path.dirname(nodeDir), nodeDir]) expect([dir, mode(dir), statSync(dir).gid]).toEqual([dir, 0o710, gid]);
    // Only the cookie: the rest of the datadir stays the owner's.
    expect(mode(path.join(nodeDir, 'btcd.conf'))).toBe(0o600);
    expect(mode(path.join(nodeDir, 'node.json'))).toBe(0o600);
    expect(mode(path.join(nodeDir, 'btcd.out'))).toBe(0o600);
  });

  (canSwitchUser ? test : test.skip)('a member of the group reaches the node with the cookie; a non-member is told what to do', async () => {
    const status = await run('node', 'status');
    const bob = ['--datadir', path.join(tmp.dir, 'bob1'), '--rpc-url', status.json.rpcUrl, '--rpc-cookie', status.json.rpcCookie, 'node', 'mine', '1'];
    const member = await asOtherUser(bob, [gid]);
    expect([member.code, member.json.height]).toEqual([0, status.json.height + 1]);
    const outsider = await asOtherUser(bob);
    expect([outsider.code, outsider.json.error.code]).toEqual([4, 'RPC_AUTH']);
    expect(outsider.json.error.hint).toMatch(/--share-group/);
  });

  test('`node credentials --out FILE` lets another datadir reach the node', async () => {
    const file = path.join(tmp.dir, 'alice-node.cookie');
    const r = await run('node', 'credentials', '--out', file);
    expect(r.code).toBe(0);
    expect(r.json).toMatchObject({ file, chain: 'btcd', share: null, rpcUrl: expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+\/$/) });
    expect(mode(file)).toBe(0o600);

    const bob = path.join(tmp.dir, 'bob2');
    const pass = path.join(tmp.dir, 'bob.pass');
    writeFileSync(pass, 'a good long passphrase\n');
    const reach = ['--datadir', bob, '--rpc-url', r.json.rpcUrl, '--rpc-cookie', file];
    expect((await swarmpay([...reach, 'wallet', 'create', '--mnemonic-file', path.join(tmp.dir, 'bob.words'), '--passphrase-file', pass])).code).toBe(0);
    const address = (await swarmpay([...reach, 'wallet', 'address'])).json.address;
    expect((await swarmpay([...reach, 'node', 'mine', '1', '--to', address])).code).toBe(0);
    const balance = await swarmpay([...reach, 'wallet', 'balance']);
    expect(balance.code).toBe(0);
    expect(BigInt(balance.json.confirmed)).toBeGreaterThan(0n);

    const shared = await run('node', 'credentials', '--out', file, '--share-group', String(gid));
    expect(shared.json.share).toMatchObject({ gid });
    expect([mode(file), statSync(file).gid]).toEqual([0o640, gid]);
  });

  test('a fresh start without --share-group closes what an earlier start opened', async () => {
    await run('node', 'stop');
    const r = await run('node', 'start');
    expect(r.json.share).toBeNull();
    expect(mode(r.json.rpcCookie)).toBe(0o600);
    for (const dir of [alice, path.dirname(nodeDir), nodeDir]) expect([dir, mode(dir)]).toEqual([dir, 0o700]);
    await run('node', 'stop');
  });

  test('`node credentials` with no node running is refused, and writes nothing', async () => {
    const file = path.join(tmp.dir, 'none.cookie');
    const r = await run('node', 'credentials', '--out', file);
    expect([r.code, r.json.error.code]).toEqual([4, 'NODE_UNREACHABLE']);
    expect(existsSync(file)).toBe(false);
  });
});
