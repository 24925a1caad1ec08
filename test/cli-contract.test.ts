/** CLI.md's contract: help, man page and completions agree; errors and exit codes have one shape. */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { buildProgram } from '../src/cli/program.js';
import { EXIT_CODES } from '../src/cli/exit-codes.js';
import { SHELLS } from '../src/cli/completion.js';
import { ROOT, swarmpay } from './helpers/cli.js';

interface Entry {
  path: string[];
  options: string[];
}

function walk(cmd: Command, prefix: string[] = []): Entry[] {
  const here: Entry = { path: prefix, options: cmd.options.map((o) => o.long!).filter(Boolean) };
  return [here, ...cmd.commands.flatMap((c) => walk(c, [...prefix, c.name()]))];
}

const entries = walk(buildProgram());
const man = readFileSync(path.join(ROOT, 'man', 'swarmpay.1'), 'utf8')
  .replace(/\\-/g, '-')
  .replace(/\\f[BIRP]/g, '')
  .replace(/\\f\[[A-Z]*\]/g, '');
const completions = Object.fromEntries(SHELLS.map((s) => [s, readFileSync(path.join(ROOT, 'completions', `swarmpay.${s}`), 'utf8')]));

describe('help, man page and completions list the same commands and options', () => {
  test.each(entries.filter((e) => e.path.length > 0).map((e) => [e.path.join(' '), e]))('%s', (_name, e) => {
    const last = (e as Entry).path[(e as Entry).path.length - 1]!;
    expect(man).toMatch(new RegExp(`${(e as Entry).path.join('\\s+')}\\b`));
    for (const opt of (e as Entry).options) expect(man).toContain(opt);
    for (const shell of SHELLS) {
      expect(completions[shell]).toContain(last);
      for (const opt of (e as Entry).options) expect([shell, completions[shell]!.includes(opt)]).toEqual([shell, true]);
    }
  });
  test('global options', () => {
    for (const opt of entries[0]!.options) {
      expect(man).toContain(opt);
      for (const shell of SHELLS) expect([shell, opt, completions[shell]!.includes(opt)]).toEqual([shell, opt, true]);
    }
  });
  test('`swarmpay completion <shell>` prints the shipped file', async () => {
    for (const shell of SHELLS) expect((await swarmpay(['completion', shell])).stdout).toBe(completions[shell]);
    const r = await swarmpay(['completion', 'pwsh']);
    expect([r.code, r.json.error.code]).toEqual([1, 'USAGE']);
  });
});

describe('errors and exit codes', () => {
  test('every error code has an exit status from CLI.md', () => {
    for (const status of Object.values(EXIT_CODES)) expect([1, 2, 3, 4, 5, 10]).toContain(status);
  });
  test('an unknown command is a usage error, exit 1, as one JSON document', async () => {
    const r = await swarmpay(['frobnicate']);
    expect(r.code).toBe(1);
    expect(r.json).toEqual({ error: { code: 'USAGE', message: expect.stringContaining('frobnicate'), hint: expect.any(String) } });
  });
  test('an unknown option is a usage error', async () => {
    const r = await swarmpay(['wallet', 'info', '--frob']);
    expect([r.code, r.json.error.code]).toEqual([1, 'USAGE']);
  });
  test('server limits out of range are usage errors, before any wallet is opened', async () => {
    for (const cmd of [['channel', 'serve'], ['escrow', 'serve']]) {
      for (const bad of [['--max-connections', '0'], ['--max-handshakes', 'many'], ['--handshake-timeout', '0'], ['--idle-timeout', '-5'], ['--link-buffer', '1000'], ['--send-queue', 'lots']]) {
        const r = await swarmpay(['--datadir', '/nonexistent-swarmpay', ...cmd, ...bad]);
        expect([cmd.join(' '), bad[0], r.code, r.json.error.code]).toEqual([cmd.join(' '), bad[0], 1, 'USAGE']);
        expect(r.json.error.message).toContain(bad[0]);
      }
    }
  });
  test('an unknown network is a usage error', async () => {
    const r = await swarmpay(['--network', 'moonnet', 'wallet', 'info']);
    expect([r.code, r.json.error.code]).toEqual([1, 'USAGE']);
  });
  test('without --json the error is one line "error: CODE: message" and a hint, on stderr', async () => {
    const { execFile } = await import('node:child_process');
    const out = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) =>
      execFile(process.execPath, [path.join(ROOT, 'bin', 'swarmpay'), '--datadir', '/nonexistent-swarmpay', 'wallet', 'info'], { env: { ...process.env, NO_COLOR: '1' } }, (err, stdout, stderr) =>
        resolve({ code: (err?.code as number) ?? 0, stdout, stderr }),
      ),
    );
    expect(out.code).toBe(3);
    expect(out.stdout).toBe('');
    const lines = out.stderr.trim().split('\n');
    expect(lines[0]).toMatch(/^error: WALLET_NOT_FOUND: /);
    expect(lines).toHaveLength(2);
  });
  test('--version and --help exit 0', async () => {
    expect((await swarmpay(['--version'])).code).toBe(0);
    expect((await swarmpay(['--help'])).code).toBe(0);
  });
});
