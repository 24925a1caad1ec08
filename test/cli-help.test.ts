/** Help as an operator reads it: global options, `help CMD SUB`, usage hints, required options, examples, `man swarmpay`. */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { buildProgram } from '../src/cli/program.js';
import { EXAMPLES, commandPath } from '../src/cli/help.js';
import { ROOT, swarmpay } from './helpers/cli.js';

function allCommands(cmd: Command): Command[] {
  return [cmd, ...cmd.commands.flatMap(allCommands)];
}

/** The commands a user runs or groups, without the `help` command each group has. */
const commands = allCommands(buildProgram()).filter((c) => c.name() !== 'help');

/** What `CMD --help` prints, with the text added after it. */
function helpText(cmd: Command): string {
  let out = '';
  cmd.configureOutput({ writeOut: (s) => (out += s), writeErr: (s) => (out += s) });
  cmd.outputHelp();
  return out;
}

describe('help', () => {
  test('a subcommand\'s help lists the global options', async () => {
    const r = await swarmpay(['wallet', 'send', '--help']);
    expect(r.code).toBe(0);
    const global = r.stdout.slice(r.stdout.indexOf('Global Options:'));
    expect(r.stdout).toContain('Global Options:');
    for (const opt of ['--network', '--datadir', '--chain', '--rpc-url', '--rpc-cookie', '--tpm', '--json', '--yes']) expect([opt, global.includes(opt)]).toEqual([opt, true]);
  });

  test('`help wallet send` is the help of `wallet send`, down to any depth', async () => {
    for (const words of [['wallet', 'send'], ['tpm', 'trust', 'remove'], ['channel'], []]) {
      const viaHelp = await swarmpay(['help', ...words]);
      const viaFlag = await swarmpay([...words, '--help']);
      expect([words.join(' '), viaHelp.code, viaHelp.stdout]).toEqual([words.join(' '), 0, viaFlag.stdout]);
    }
    // A group's own help command walks down too.
    expect((await swarmpay(['tpm', 'help', 'trust', 'remove'])).stdout).toBe((await swarmpay(['tpm', 'trust', 'remove', '--help'])).stdout);
  });

  test('`help` of an unknown command is a usage error', async () => {
    const r = await swarmpay(['help', 'wallet', 'frob']);
    expect([r.code, r.json.error.code, r.json.error.hint]).toEqual([1, 'USAGE', 'see `swarmpay wallet --help`']);
  });

  test('a usage error points to the help of the command it happened in', async () => {
    const cases: [string[], string][] = [
      [['wallet', 'send', '--frob'], 'swarmpay wallet send --help'],
      [['wallet', 'send', 'bcrt1qxyz'], 'swarmpay wallet send --help'],
      [['tpm', 'attest'], 'swarmpay tpm attest --help'],
      [['tpm', 'trust', 'remove'], 'swarmpay tpm trust remove --help'],
      [['wallet', 'sendd'], 'swarmpay wallet --help'],
      [['frobnicate'], 'swarmpay --help'],
    ];
    for (const [args, help] of cases) {
      const r = await swarmpay(args);
      expect([args.join(' '), r.code, r.json.error.code, r.json.error.hint]).toEqual([args.join(' '), 1, 'USAGE', `see \`${help}\``]);
    }
  });

  test('required options are marked "(required)"', async () => {
    let marked = 0;
    for (const cmd of commands) {
      const text = helpText(cmd);
      for (const o of cmd.options.filter((x) => x.mandatory)) {
        // The option's row, with the lines its description wraps onto: up to the next row.
        const from = text.indexOf(`\n  ${o.flags} `);
        const row = from < 0 ? '' : text.slice(from + 1).split(/\n {2}-|\n\n/)[0]!.replace(/\s+/g, ' ');
        expect([commandPath(cmd).join(' '), o.flags, row]).toEqual([commandPath(cmd).join(' '), o.flags, expect.stringContaining('(required)')]);
        marked++;
      }
    }
    expect(marked).toBeGreaterThan(0);
    expect((await swarmpay(['tpm', 'attest', '--help'])).stdout.replace(/\s+/g, ' ')).toMatch(/--nonce <hex> [^-]*\(required\)/);
  });

  test('every command\'s help ends with examples', () => {
    for (const cmd of commands) {
      const name = commandPath(cmd).join(' ');
      expect([name, helpText(cmd)]).toEqual([name, expect.stringMatching(/\nExamples:\n {2}\$ .*swarmpay/)]);
    }
  });

  test('every example is a valid command line of its command', async () => {
    for (const [name, examples] of Object.entries(EXAMPLES)) {
      for (const example of examples) {
        const words = shellWords(example);
        const at = words.indexOf('swarmpay');
        expect([example, at >= 0]).toEqual([example, true]);
        const argv = words.slice(at + 1);
        // The example is of its command: the command's words appear in order.
        expect([example, argv.join(' ').includes(name)]).toEqual([example, true]);
        // And commander accepts it: known options, enough arguments, valid choices.
        const program = buildProgram();
        for (const c of allCommands(program)) if (c.commands.length === 0 && c.name() !== 'help') c.action(() => {});
        for (const c of allCommands(program)) c.configureOutput({ writeOut: () => {}, writeErr: () => {} });
        await expect(program.parseAsync(argv, { from: 'user' }).then(() => example)).resolves.toBe(example);
      }
    }
  });

  test('every command has examples, and every example names a command', () => {
    const names = new Set(commands.map((c) => commandPath(c).join(' ')));
    expect([...names].filter((n) => !EXAMPLES[n])).toEqual([]);
    expect(Object.keys(EXAMPLES).filter((n) => !names.has(n))).toEqual([]);
  });

  test('package.json has a `man` field, so `man swarmpay` works after `npm link`', () => {
    const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { man?: string | string[] };
    const pages = [pkg.man ?? []].flat();
    expect(pages).toContain('./man/swarmpay.1');
    for (const p of pages) expect([p, existsSync(path.join(ROOT, p))]).toEqual([p, true]);
  });
});

/**
 * An example's words as a shell would split them, enough for these examples: quotes kept
 * together, `$(…)` one word, and what follows a redirection or process substitution dropped.
 */
function shellWords(line: string): string[] {
  const inner = /<\((.*)\)/.exec(line)?.[1] ?? line.split(' > ')[0]!;
  return (inner.match(/"[^"]*"|'[^']*'|\S+/g) ?? []).map((w) => w.replace(/^["']|["']$/g, ''));
}
