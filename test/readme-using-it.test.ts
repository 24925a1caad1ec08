/**
 * The README's "Using it" block, as printed there: run top to bottom by `bash -e` in a fresh
 * folder on a fresh datadir, its `alias swarmpay="$PWD/bin/swarmpay"` pointing at this
 * repository's bin/swarmpay. Every line must run and succeed; the node is stopped whatever
 * happens (a trap).
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import type { Readable } from 'node:stream';
import path from 'node:path';
import { ROOT, swarmpay } from './helpers/cli.js';
import { tempDir } from './helpers/tmp.js';

const BIN = path.join(ROOT, 'bin', 'swarmpay');

/** The first ```sh block after the heading "## Using it", exactly as printed. */
function usingIt(): string {
  const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const at = readme.indexOf('\n## Using it\n');
  expect(at).toBeGreaterThan(0);
  const m = /```sh\n([\s\S]*?)```/.exec(readme.slice(at));
  if (m === null || m[1] === undefined) throw new Error('the README has no ```sh block under "Using it"');
  return m[1];
}

/** The settings a user's environment might hold; the block must run on defaults alone. */
const SETTINGS = ['SWARMPAY_NETWORK', 'SWARMPAY_CHAIN', 'SWARMPAY_RPC_URL', 'SWARMPAY_RPC_COOKIE', 'SWARMPAY_TPM', 'SWARMPAY_FEE_RATE'];

describe('the README\'s "Using it" block', () => {
  let tmp: ReturnType<typeof tempDir>;
  let datadir: string;
  beforeAll(() => {
    tmp = tempDir();
    datadir = path.join(tmp.dir, 'datadir');
  });
  afterAll(async () => {
    // The trap stopped it; this is for a bash that was killed.
    await swarmpay(['--datadir', datadir, 'node', 'stop']);
    tmp.remove();
  });

  test('runs as printed with bash -e on a fresh datadir, every line of it', async () => {
    const block = usingIt();
    // The user's folder: this repository's bin/ where the alias looks for it, and nothing else.
    symlinkSync(path.join(ROOT, 'bin'), path.join(tmp.dir, 'bin'));
    const script = path.join(tmp.dir, 'using-it.sh');
    // Line 1 is the trap, and the trace's line numbers (bash takes no PS4 from a root's environment); the block starts on line 2.
    writeFileSync(script, `trap '"${BIN}" node stop >/dev/null 2>&1 || true' EXIT; PS4='+line \${LINENO}: '\n${block}`);
    const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1', BASH_XTRACEFD: '3' };
    for (const k of SETTINGS) delete env[k];
    env.SWARMPAY_DATADIR = datadir;
    // -x traces each line as it runs, on fd 3: which lines ran, apart from what they print.
    const child = spawn('bash', ['-e', '-x', '-O', 'expand_aliases', script], { cwd: tmp.dir, env, stdio: ['ignore', 'pipe', 'pipe', 'pipe'] });
    const read = (s: Readable | null) => {
      let text = '';
      s?.on('data', (d: Buffer) => (text += d.toString()));
      return () => text;
    };
    const [stdout, stderr, trace] = [read(child.stdout), read(child.stderr), read(child.stdio[3] as Readable)];
    const code = await new Promise<number>((resolve) => child.on('close', (c) => resolve(c ?? -1)));
    const r = { code, stdout: stdout(), stderr: stderr() };
    expect({ code: r.code, stderr: r.code === 0 ? '' : r.stderr }).toEqual({ code: 0, stderr: '' });

    // Every command line of the block ran (bash -e stops at the first that fails).
    const commandLines = block.split('\n').flatMap((line, i) => (line.trim() === '' || line.trim().startsWith('#') ? [] : [i + 2]));
    const ran = new Set([...trace().matchAll(/^\++line (\d+): /gm)].map((m) => Number(m[1])));
    expect(commandLines.filter((n) => !ran.has(n))).toEqual([]);

    // What each step says it did.
    expect(r.stdout).toMatch(/^created regtest wallet [0-9a-f]{8} /m);
    expect(r.stdout).toMatch(/^keystore sealed by swtpm 127\.0\.0\.1:\d+$/m);
    expect(r.stdout).toMatch(/^sent: [0-9a-f]{64}$/m);
    expect(r.stdout).toMatch(/^wallet +fingerprint [0-9a-f]{8}, sealed by the TPM$/m);
    const balances = [...r.stdout.matchAll(/^confirmed: +(\d+) sats/gm)].map((m) => BigInt(m[1]!));
    expect(balances).toHaveLength(2);
    // The payment went to the wallet itself: after it confirms, only its fee is gone.
    expect(balances[0]! - balances[1]!).toBeGreaterThan(0n);
    expect(balances[0]! - balances[1]!).toBeLessThan(10_000n);
    expect(existsSync(path.join(tmp.dir, 'alice.words'))).toBe(true);
    // And the node is stopped.
    expect((await swarmpay(['--datadir', datadir, 'node', 'status'])).json).toMatchObject({ running: false });
  }, 300_000);
});
