/** The CLI's contract (README "Output and exit codes", the man page): help, man page and completions agree; errors and exit codes have one shape, all documented. */
import { readdirSync, readFileSync } from 'node:fs';
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
  // A group's `help` is the program's `help` (one entry in the man page), reached one level down.
  test.each(entries.filter((e) => e.path.length === 1 || (e.path.length > 1 && e.path[e.path.length - 1] !== 'help')).map((e) => [e.path.join(' '), e]))('%s', (_name, e) => {
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

const names = (cmd: Command) => cmd.options.flatMap((o) => [o.short, o.long].filter((x): x is string => !!x));
const program = buildProgram();
const byPath = new Map<string, Command>();
const index = (c: Command, p: string[] = []): void => {
  byPath.set(p.join(' '), c);
  for (const s of c.commands) index(s, [...p, s.name()]);
};
index(program);
/** The program's option names of each command that has any (global options apart). */
const programOptions = new Map([...byPath].filter(([p, c]) => p !== '' && c.options.length > 0).map(([p, c]) => [p, names(c).sort()]));
const subcommandsOf = (p: string) => byPath.get(p)!.commands.map((c) => c.name()).sort();
const groups = [...byPath].filter(([, c]) => c.commands.length > 0).map(([p]) => p);
const globalOptions = [...names(program).filter((n) => n !== '-V' && n !== '--version'), '-h', '--help'].sort();
const words = (text: string) => text.trim().split(/\s+/).filter(Boolean).sort();

describe('each completion lists exactly the program\'s commands and options', () => {
  test('bash', () => {
    const bash = completions.bash!;
    expect(words(/^_swarmpay_groups="([^"]*)"/m.exec(bash)![1]!)).toEqual(subcommandsOf(''));
    expect(words(/^_swarmpay_global_options="([^"]*)"/m.exec(bash)![1]!)).toEqual(globalOptions);
    expect(words(/^_swarmpay_top_options="([^"]*)"/m.exec(bash)![1]!)).toEqual(['--version', '-V']);
    const cases = (fn: string) => {
      const body = bash.slice(bash.indexOf(`${fn}() {`), bash.indexOf('\n}', bash.indexOf(`${fn}() {`)));
      return new Map([...body.matchAll(/^\s+"?([a-z][a-z0-9 ]*?)"?\)\s+echo "([^"]*)"/gm)].map((m) => [m[1]!, words(m[2]!)]));
    };
    const subs = cases('_swarmpay_subcommands');
    const positional = cases('_swarmpay_positional');
    for (const g of groups.filter((g) => g !== '')) expect([g, g.includes(' ') ? positional.get(`${g} 1`) : subs.get(g)]).toEqual([g, subcommandsOf(g)]);
    expect([...subs.keys()].sort()).toEqual(groups.filter((g) => g !== '' && !g.includes(' ')).sort());
    const options = cases('_swarmpay_options');
    expect(Object.fromEntries([...options].filter(([, o]) => o.length > 0))).toEqual(Object.fromEntries(programOptions));
  });

  test('zsh', () => {
    const zsh = completions.zsh!;
    const arrays = new Map([...zsh.matchAll(/^typeset -ga (_swarmpay_\w+)=\(([\s\S]*?)\)$/gm)].map((m) => [m[1]!, m[2]!.split('\n').map((l) => l.trim()).filter(Boolean)]));
    const optionsIn = (spec: string[]) => spec.map((l) => /^'(?:\([^)]*\))?(-[-\w]*)/.exec(l)?.[1]).filter((x): x is string => !!x).sort();
    expect(optionsIn(arrays.get('_swarmpay_global_args')!)).toEqual(globalOptions);
    expect(optionsIn(arrays.get('_swarmpay_top_args')!)).toEqual(['--version', '-V']);
    for (const g of groups) {
      const entries = arrays.get(`_swarmpay_cmds${g ? `_${g.replace(/ /g, '_')}` : ''}`);
      expect([g, entries?.map((e) => /^'([^:]+):/.exec(e)![1]!).sort()]).toEqual([g, subcommandsOf(g)]);
    }
    expect([...arrays.keys()].filter((k) => k.startsWith('_swarmpay_cmds')).length).toBe(groups.length);
    for (const [p, c] of byPath) {
      if (c.commands.length > 0 || p === '') continue;
      const spec = arrays.get(`_swarmpay_args_${p.replace(/ /g, '_')}`);
      expect([p, spec && optionsIn(spec)]).toEqual([p, names(c).sort()]);
    }
    const leaves = [...byPath].filter(([p, c]) => p !== '' && c.commands.length === 0).length;
    expect([...arrays.keys()].filter((k) => k.startsWith('_swarmpay_args_')).length).toBe(leaves);
  });

  test('fish', () => {
    const fish = completions.fish!;
    const rows = (fn: string) => [...fish.matchAll(new RegExp(`^${fn} ('[^']*'|"[^"]*"|\\S+) ('[^']*'|"[^"]*"|\\S+)`, 'gm'))].map((m) => [m[1]!.replace(/^['"]|['"]$/g, ''), m[2]!.replace(/^['"]|['"]$/g, '')] as const);
    const commands = rows('__swarmpay_cmd').map(([parent, name]) => (parent ? `${parent} ${name}` : name)).sort();
    expect(commands).toEqual([...byPath.keys()].filter((p) => p !== '').sort());
    const options = new Map<string, string[]>();
    for (const [cmd, flags] of rows('__swarmpay_opt')) options.set(cmd, [...(options.get(cmd) ?? []), ...flags.split(',')]);
    expect(options.get('*')!.sort()).toEqual(globalOptions);
    expect(options.get('')!.sort()).toEqual(['--version', '-V']);
    options.delete('*');
    options.delete('');
    expect(Object.fromEntries([...options].map(([c, o]) => [c, o.sort()]))).toEqual(Object.fromEntries(programOptions));
  });
});

describe('the man page\'s synopsis lists exactly the program\'s commands and options', () => {
  test('each command\'s forms together have its options, and no other', () => {
    const synopsis = man.slice(man.indexOf('.SH SYNOPSIS'), man.indexOf('.SH DESCRIPTION'));
    const found = new Map<string, Set<string>>();
    for (const block of synopsis.split('.SY swarmpay\n').slice(2)) {
      const lines = block.slice(0, block.indexOf('.YS')).split('\n');
      // The command: the leading bold words, the last of them maybe "a | b | c" alternatives.
      const path: string[] = [];
      let alternatives = [''];
      for (const line of lines) {
        const bold = /^\.B (\w[\w ]*)$/.exec(line);
        const alt = /^\.BR (\w+(?: \| \w+)+)$/.exec(line);
        if (bold) path.push(...bold[1]!.split(' '));
        else if (alt) alternatives = alt[1]!.split(' | ');
        else break;
      }
      if (path.length === 0) continue; // -V | --version
      const options = block.match(/--[a-z][a-z0-9-]*/g) ?? [];
      for (const a of alternatives) {
        const p = [...path, a].filter(Boolean).join(' ');
        const hasSubs = byPath.get(p)?.commands.length;
        // "node start|stop|status" names commands; "completion bash|zsh|fish" an argument's values.
        const key = hasSubs === undefined ? path.join(' ') : p;
        found.set(key, new Set([...(found.get(key) ?? []), ...options]));
      }
    }
    const leaves = [...byPath].filter(([p, c]) => p !== '' && c.commands.length === 0 && !p.endsWith('help')).map(([p]) => p);
    for (const p of leaves) expect([p, [...(found.get(p) ?? [])].sort()]).toEqual([p, (programOptions.get(p) ?? []).filter((o) => o.startsWith('--')).sort()]);
    expect([...found.keys()].filter((p) => !byPath.has(p))).toEqual([]);
  });
});

describe('errors and exit codes', () => {
  test('every error code has an exit status of the documented ones', () => {
    const documented = [...readme.matchAll(/^\| (\d+) \|/gm)].map((m) => Number(m[1]));
    for (const status of Object.values(EXIT_CODES)) expect(documented).toContain(status);
  });
  test('every error code the code can raise is documented with its exit code, in the README and the man page', () => {
    const raised = errorCodes();
    expect(raised.length).toBeGreaterThan(50);
    const inReadme = readmeExitTable();
    const inMan = manExitStatus();
    for (const code of raised) {
      const exit = (EXIT_CODES as Record<string, number>)[code];
      expect([code, exit, inReadme.get(code), inMan.get(code)]).toEqual([code, expect.any(Number), exit, exit]);
    }
    // Nothing documented that the code does not have.
    expect([...inReadme.keys(), ...inMan.keys()].filter((c) => !raised.includes(c))).toEqual([]);
  });
  test('no reference to a CLI.md that is not in the repository', () => {
    const files = ['README.md', 'man/swarmpay.1', ...sources('src'), ...sources('test'), ...SHELLS.map((s) => `completions/swarmpay.${s}`)];
    const referring = files.filter((f) => f !== 'test/cli-contract.test.ts' && readFileSync(path.join(ROOT, f), 'utf8').includes('CLI' + '.md'));
    expect(referring).toEqual([]);
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
      execFile(path.join(ROOT, 'bin', 'swarmpay'), ['--datadir', '/nonexistent-swarmpay', 'wallet', 'info'], { env: { ...process.env, NO_COLOR: '1' } }, (err, stdout, stderr) =>
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

const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');

/** Every .ts file under `dir`, relative to the repository. */
function sources(dir: string): string[] {
  return readdirSync(path.join(ROOT, dir), { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts'))
    .map((f) => path.join(dir, f));
}

/** The codes of src/errors.ts's ErrorCode union, and any code a SwarmpayError is made with in src/. */
function errorCodes(): string[] {
  const errors = readFileSync(path.join(ROOT, 'src', 'errors.ts'), 'utf8');
  const union = /export type ErrorCode =([^;]*);/.exec(errors)![1]!;
  const codes = new Set([...union.matchAll(/\|\s*'([A-Z_]+)'/g)].map((m) => m[1]!));
  for (const f of sources('src')) {
    for (const m of readFileSync(path.join(ROOT, f), 'utf8').matchAll(/SwarmpayError\(\s*'([A-Z_]+)'/g)) codes.add(m[1]!);
  }
  return [...codes].sort();
}

/** code → exit status, from the README's table under "Output and exit codes". */
function readmeExitTable(): Map<string, number> {
  const section = readme.slice(readme.indexOf('### Output and exit codes'));
  const table = new Map<string, number>();
  for (const row of section.slice(0, section.indexOf('\n## ')).matchAll(/^\| (\d+) \|.*$/gm)) {
    for (const c of row[0].matchAll(/`([A-Z][A-Z_]+)`/g)) table.set(c[1]!, Number(row[1]));
  }
  return table;
}

/** code → exit status, from the man page's EXIT STATUS section. */
function manExitStatus(): Map<string, number> {
  const section = man.slice(man.indexOf('.SH EXIT STATUS'), man.indexOf('.SH', man.indexOf('.SH EXIT STATUS') + 1));
  const table = new Map<string, number>();
  for (const item of section.split(/^\.TP\n\.B (?=\d+\n)/m).slice(1)) {
    const status = Number(/^\d+/.exec(item)![0]);
    const codes = item.slice(item.search(/^Codes?:/m));
    for (const c of codes.matchAll(/^\.BR? ([A-Z][A-Z_]+)/gm)) table.set(c[1]!, status);
  }
  return table;
}
