/**
 * The CLI's start-up snapshot (issue 15's fast start): npm run build saves the CLI's heap with
 * the library loaded, and bin/swarmpay starts Node on it when it was built by the same Node.
 * What each run gets fresh (randomness, the environment, the clock) must never come from the
 * build: the prelude refuses a module that reads any of it as it is evaluated. Every other CLI
 * test runs through the snapshot too; this one checks the choice bin/swarmpay makes and the
 * build's refusals.
 */
import { execFile, execFileSync } from 'node:child_process';
import { cpSync, chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { machine, type } from 'node:os';
import path from 'node:path';
import { ROOT } from './helpers/cli.js';
import { tempDir } from './helpers/tmp.js';

const tmp = tempDir('swarmpay-snapshot-');
afterAll(() => tmp.remove());

const blobs = () => readdirSync(path.join(ROOT, 'dist', 'snapshot')).filter((f) => f.endsWith('.blob'));

interface Run {
  code: number;
  stdout: string;
  stderr: string;
  /** How bin/swarmpay started Node: its arguments before the CLI's own. */
  nodeArgs: string[];
}

/**
 * Runs `bin` ARGS with `node` on PATH being a script that logs its arguments and runs this
 * Node, reporting `version` to `node --version` (this Node's own by default).
 */
function run(bin: string, args: string[], version = process.version, env: Record<string, string> = {}): Promise<Run> {
  const dir = path.join(tmp.dir, `node-${version}-${Math.random().toString(36).slice(2)}`);
  mkdirSync(dir);
  const log = path.join(dir, 'log');
  writeFileSync(
    path.join(dir, 'node'),
    `#!/bin/sh\nif [ "$1" = --version ]; then echo ${version}; exit 0; fi\nprintf '%s\\n' "$@" > '${log}'\nexec '${process.execPath}' "$@"\n`,
  );
  chmodSync(path.join(dir, 'node'), 0o755);
  return new Promise((resolve) =>
    execFile(bin, args, { env: { ...process.env, NO_COLOR: '1', PATH: `${dir}:${process.env.PATH}`, ...env } }, (err, stdout, stderr) => {
      const logged = existsSync(log) ? readFileSync(log, 'utf8').split('\n') : [];
      const cli = logged.findIndex((a) => a.endsWith('swarmpay.cjs') || a.endsWith('/bin/swarmpay'));
      // Paths as absolute, normalized: bin/swarmpay passes them as it found itself (`bin/../dist/…`).
      resolve({ code: err ? Number(err.code) : 0, stdout, stderr, nodeArgs: logged.slice(0, cli + 1).map((a) => (a.includes('/') ? path.resolve(a) : a)) });
    }),
  );
}

const BIN = path.join(ROOT, 'bin', 'swarmpay');

describe('bin/swarmpay and the start-up snapshot', () => {
  it('npm run build made one snapshot, for this Node and machine, and bin/swarmpay starts from it', async () => {
    expect(blobs()).toEqual([`swarmpay-${process.version}-${type()}-${machine()}.blob`]);
    const r = await run(BIN, ['--version']);
    expect({ code: r.code, stdout: r.stdout }).toEqual({ code: 0, stdout: '0.1.0\n' });
    expect(r.nodeArgs).toEqual(['--snapshot-blob', path.join(ROOT, 'dist', 'snapshot', blobs()[0]!), '--', path.join(ROOT, 'dist', 'snapshot', 'swarmpay.cjs')]);
  });

  it('never gives a snapshot to another Node: that one runs the ES modules, with the same results', async () => {
    const cases = [['--version'], ['--help'], ['help', 'wallet', 'send'], ['--json', 'wallet', 'sned'], ['--json', '--datadir', '/nonexistent-swarmpay', 'wallet', 'info'], ['completion', 'bash']];
    for (const args of cases) {
      const [snapshot, other] = [await run(BIN, args), await run(BIN, args, 'v99.0.0')];
      expect(snapshot.nodeArgs[0]).toBe('--snapshot-blob');
      expect(other.nodeArgs).toEqual([path.join(ROOT, 'bin', 'swarmpay')]);
      expect({ code: other.code, stdout: other.stdout, stderr: other.stderr }).toEqual({ code: snapshot.code, stdout: snapshot.stdout, stderr: snapshot.stderr });
    }
  });

  it('says in `info` how it started, and on which Node', async () => {
    const args = ['--json', '--datadir', path.join(tmp.dir, 'info'), '--tpm', 'none', '--rpc-url', 'http://127.0.0.1:9/', 'info'];
    const [snapshot, other] = [await run(BIN, args), await run(BIN, args, 'v99.0.0')];
    expect(JSON.parse(snapshot.stdout).cli).toEqual({ start: 'snapshot', node: process.version });
    // The fake node says v99 to `node --version` only: the Node that runs is this one.
    expect(JSON.parse(other.stdout).cli).toEqual({ start: 'modules', node: process.version });
  });

  it('takes the ES modules under NODE_OPTIONS, whose V8 options a snapshot would refuse to start with', async () => {
    const r = await run(BIN, ['--version'], process.version, { NODE_OPTIONS: '--max-old-space-size=512' });
    expect({ code: r.code, stdout: r.stdout, stderr: r.stderr, nodeArgs: r.nodeArgs }).toEqual({ code: 0, stdout: '0.1.0\n', stderr: '', nodeArgs: [path.join(ROOT, 'bin', 'swarmpay')] });
  });

  it('runs the module, not the snapshot, when tsc built later, the blob is empty or its script is gone; through a chain of symlinks', async () => {
    // A copy of the package, so that what this changes leaves the one other tests run alone.
    const pkg = path.join(tmp.dir, 'pkg');
    for (const d of ['bin', 'dist', 'completions']) cpSync(path.join(ROOT, d), path.join(pkg, d), { recursive: true, preserveTimestamps: true });
    symlinkSync(path.join(ROOT, 'node_modules'), path.join(pkg, 'node_modules'));
    cpSync(path.join(ROOT, 'package.json'), path.join(pkg, 'package.json'));
    // npm link's way: a link in a bin folder to the package's bin/swarmpay, here through a second, relative one.
    symlinkSync(path.join(pkg, 'bin', 'swarmpay'), path.join(tmp.dir, 'swarmpay-linked'));
    const link = path.join(tmp.dir, 'swarmpay');
    symlinkSync('swarmpay-linked', link);
    const snapshot = path.join(pkg, 'dist', 'snapshot');
    const [blob, script] = [path.join(snapshot, blobs()[0]!), path.join(snapshot, 'swarmpay.cjs')];
    const started = async () => {
      const r = await run(link, ['--version']);
      expect({ code: r.code, stdout: r.stdout, stderr: r.stderr }).toEqual({ code: 0, stdout: '0.1.0\n', stderr: '' });
      return r.nodeArgs[0] === '--snapshot-blob' ? 'snapshot' : r.nodeArgs[0] === path.join(pkg, 'bin', 'swarmpay') ? 'module' : r.nodeArgs.join(' ');
    };
    expect(await started()).toBe('snapshot');
    // A blob Node would crash on: an empty one (what a build stopped at the wrong moment left before it wrote a whole one).
    const kept = readFileSync(blob);
    writeFileSync(blob, '');
    expect(await started()).toBe('module');
    writeFileSync(blob, kept);
    cpSync(script, `${script}.kept`);
    rmSync(script);
    expect(await started()).toBe('module');
    cpSync(`${script}.kept`, script, { preserveTimestamps: true });
    expect(await started()).toBe('snapshot');
    const later = new Date(Date.now() + 60_000);
    utimesSync(path.join(pkg, 'dist', 'cli', 'main.js'), later, later);
    expect(await started()).toBe('module');
  });

  it('runs as `node bin/swarmpay`, and under a sh that refuses unset variables', async () => {
    const asModule = execFileSync(process.execPath, [BIN, '--version'], { encoding: 'utf8' });
    expect(asModule).toBe('0.1.0\n');
    const env: NodeJS.ProcessEnv = { ...process.env, SHELLOPTS: 'nounset' };
    delete env.NODE_OPTIONS;
    expect(execFileSync('bash', [BIN, '--version'], { encoding: 'utf8', env })).toBe('0.1.0\n');
  });

  it('finds the files beside it through a linked folder (the completions, read from its own place)', async () => {
    const linked = path.join(tmp.dir, 'linked');
    mkdirSync(linked);
    symlinkSync(path.join(ROOT, 'bin'), path.join(linked, 'bin'));
    const r = await run(path.join(linked, 'bin', 'swarmpay'), ['completion', 'bash']);
    expect({ code: r.code, snapshot: r.nodeArgs[0], stdout: r.stdout }).toEqual({ code: 0, snapshot: '--snapshot-blob', stdout: readFileSync(path.join(ROOT, 'completions', 'swarmpay.bash'), 'utf8') });
  });

  it('gives each run its own randomness: two wallets made from the snapshot differ', async () => {
    const made = [];
    const pass = path.join(tmp.dir, 'pass');
    writeFileSync(pass, 'a good long passphrase');
    for (const name of ['a', 'b']) {
      const words = path.join(tmp.dir, `${name}.words`);
      const r = await run(BIN, ['--json', '--yes', '--datadir', path.join(tmp.dir, name), '--tpm', 'none', 'wallet', 'create', '--passphrase-file', pass, '--mnemonic-file', words]);
      expect({ code: r.code, snapshot: r.nodeArgs[0] }).toEqual({ code: 0, snapshot: '--snapshot-blob' });
      made.push({ words: readFileSync(words, 'utf8'), fingerprint: (JSON.parse(r.stdout) as { fingerprint: string }).fingerprint });
    }
    expect(made[0]!.words).not.toBe(made[1]!.words);
    expect(made[0]!.fingerprint).not.toBe(made[1]!.fingerprint);
  });
});

describe('building a snapshot refuses a module that keeps what a run should read', () => {
  /** Builds a snapshot of the prelude then `source`, as npm run build does; its error output, or null if it built. */
  function buildOf(source: string): string | null {
    const prelude = execFileSync(process.execPath, ['--input-type=module', '-e', `import { snapshotPrelude } from '${path.join(ROOT, 'scripts', 'snapshot-prelude.mjs')}'; process.stdout.write(snapshotPrelude());`], { encoding: 'utf8' });
    const dir = path.join(tmp.dir, `build-${Math.random().toString(36).slice(2)}`);
    mkdirSync(dir);
    writeFileSync(path.join(dir, 'entry.cjs'), `${prelude}\n${source}\n`);
    try {
      execFileSync(process.execPath, ['--snapshot-blob', path.join(dir, 'blob'), '--build-snapshot', path.join(dir, 'entry.cjs')], { stdio: 'pipe' });
      return null;
    } catch (e) {
      return String((e as { stderr: Buffer }).stderr);
    }
  }

  it.each([
    ['the environment', 'const home = process.env.HOME;', "the build's process.env"],
    ['the working directory', 'const here = process.cwd();', "the build's process.cwd()"],
    ['the clock', 'const started = Date.now();', "the build's clock (Date.now)"],
    ['random numbers', 'const r = Math.random();', "the build's random numbers (Math.random)"],
    ['a random key', "const key = require('node:crypto').randomBytes(32);", "the build's node:crypto"],
    ['the web crypto', 'const key = crypto.getRandomValues(new Uint8Array(32));', "the build's crypto"],
    ["the user's home", "const home = require('node:os').homedir();", "the build's node:os"],
    ['a terminal', "const colour = require('node:tty').isatty(1);", "the build's node:tty"],
    ['a signal handler', "process.on('SIGINT', () => {});", "the build's process.on()"],
    ['a file', "const conf = require('node:fs').readFileSync('/etc/hostname');", "the build's node:fs"],
  ])('%s', (_what, source, refusal) => {
    expect(buildOf(source)).toContain(refusal);
  });

  it('builds a module that only defines, and one that uses a built-in module later', () => {
    expect(buildOf("const crypto = require('node:crypto'); const os = require('node:os'); class Key extends require('node:events') {}; globalThis.later = () => [crypto.randomBytes(1), os.homedir(), new Key()];")).toBeNull();
  });
});
