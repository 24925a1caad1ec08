/**
 * A `--peer-cmd` command's stderr, as real child processes write it: line by line with the
 * peer's name, a line without end cut as it comes (never held whole), the last partial line
 * kept, and in the CLI `[NAME] line` on our stderr with the peer's escape sequences made
 * harmless, nothing of it on stdout.
 */
import { spawn } from 'node:child_process';
import { chmodSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { swarmpay, until } from './helpers/cli.js';
import { tempDir } from './helpers/tmp.js';
import { PASSPHRASE } from './helpers/two-datadirs.js';
import { MAX_STDERR_LINE, commandName, readLines } from '../src/peer/command-stderr.js';
import { spawnPeer } from '../src/peer/transports.js';
import { generateStaticKey } from '../src/peer/keys.js';
import { peerStderrLine } from '../src/cli/peer-stderr.js';
import { colours } from '../src/cli/colours.js';

describe('a peer command\'s stderr', () => {
  let tmp: ReturnType<typeof tempDir>;
  /** An executable script in the test's folder: a peer that says things on stderr and never speaks the protocol. */
  const script = (name: string, body: string) => {
    const file = path.join(tmp.dir, name);
    writeFileSync(file, `#!/bin/sh\n${body}\n`);
    chmodSync(file, 0o755);
    return file;
  };
  beforeAll(() => {
    tmp = tempDir();
  });
  afterAll(() => tmp.remove());

  test('the name: ssh\'s destination past its options, else the program run', () => {
    expect(commandName('ssh bob@host swarmpay channel serve --stdio')).toBe('bob@host');
    expect(commandName('ssh -p 2222 -o BatchMode=yes -i "/my keys/id" -vC bob@host swarmpay')).toBe('bob@host');
    expect(commandName('ssh -p2222 -vl bob host.example swarmpay')).toBe('host.example');
    expect(commandName('/usr/bin/ssh -- host swarmpay')).toBe('host');
    expect(commandName("SSH_AUTH_SOCK=/x '/opt/swarm pay/bin/swarmpay' channel serve --stdio")).toBe('swarmpay');
    expect(commandName('  ')).toBe('peer');
  });

  test('spawnPeer: every line with the name, a long one cut, the partial last one kept, all before the error', async () => {
    const peer = script('talker', [
      'echo "first line" >&2',
      'printf "crlf line\\r\\n" >&2',
      // 10,000 x's and a newline: cut at MAX_STDERR_LINE.
      `head -c 10000 /dev/zero | tr '\\0' x >&2; echo >&2`,
      'printf "last words, no newline" >&2',
      'exit 3',
    ].join('\n'));
    const lines: [string, string][] = [];
    await expect(spawnPeer(`'${peer}' --stdio`, generateStaticKey(), { stderr: (line, name) => lines.push([name, line]) })).rejects.toMatchObject({ code: 'PEER_UNREACHABLE', message: expect.stringContaining('status 3') });
    expect(new Set(lines.map(([name]) => name))).toEqual(new Set(['talker']));
    const x = 'x'.repeat(MAX_STDERR_LINE);
    expect(lines.map(([, line]) => line)).toEqual(['first line', 'crlf line', x, x, 'x'.repeat(10_000 - 2 * MAX_STDERR_LINE), 'last words, no newline']);
  });

  test('a peer writing without end: its text comes in cut lines while it runs, never held whole', async () => {
    // 4 MiB with no newline, then silence: whatever it costs us, it must not wait for a newline.
    const child = spawn('/bin/sh', ['-c', "head -c 4194304 /dev/zero | tr '\\0' y >&2; exec sleep 30"], { stdio: ['ignore', 'ignore', 'pipe'] });
    let count = 0;
    let longest = 0;
    readLines(child.stderr, (line) => {
      count++;
      longest = Math.max(longest, line.length);
    });
    try {
      await until(() => count === 4194304 / MAX_STDERR_LINE, 30_000);
      expect(longest).toBe(MAX_STDERR_LINE);
      expect(child.exitCode).toBeNull(); // still running: the lines came as the text did
    } finally {
      child.kill('SIGKILL');
    }
  });

  test('in colour, the peer\'s colours are kept and reset at the line\'s end; any other sequence is text', () => {
    const line = '\x1b[31mred\x1b[0m \x1b]52;c;cGF5IG1l\x07 \x1b[1A\rover';
    expect(peerStderrLine(colours(true), 'bob@host', line)).toBe('\x1b[2m[bob@host]\x1b[22m \x1b[31mred\x1b[0m ^[]52;c;cGF5IG1l^G ^[[1A^Mover\x1b[0m');
    expect(peerStderrLine(colours(false), 'bob@host', line)).toBe('[bob@host] red ^[]52;c;cGF5IG1l^G ^[[1A^Mover');
  });

  test('bidirectional controls are shown as text, not obeyed; blink, reverse and conceal are dropped, 256 and RGB colours kept', () => {
    const line = 'ok \u202Egnp.exe\u202C \u2066x\u2069 \x1b[5mblink\x1b[7mrev\x1b[8mhidden\x1b[0m \x1b[38;5;202mpal\x1b[38;2;1;2;3mrgb\x1b[1;31mbold';
    expect(peerStderrLine(colours(true), 'p', line)).toBe(
      '\x1b[2m[p]\x1b[22m ok <U+202E>gnp.exe<U+202C> <U+2066>x<U+2069> blinkrevhidden\x1b[0m \x1b[38;5;202mpal\x1b[38;2;1;2;3mrgb\x1b[1;31mbold\x1b[0m',
    );
    expect(peerStderrLine(colours(false), '\u202Ep', 'a\u200Fb')).toBe('[<U+202E>p] a<U+200F>b');
  });

  test('the CLI: `[NAME] line` on stderr, escapes shown as text, stdout only the JSON error', async () => {
    const datadir = path.join(tmp.dir, 'd');
    const pass = path.join(tmp.dir, 'pass');
    writeFileSync(pass, PASSPHRASE);
    expect((await swarmpay(['--datadir', datadir, '--tpm', 'none', 'wallet', 'create', '--mnemonic-file', path.join(tmp.dir, 'words'), '--passphrase-file', pass])).code).toBe(0);
    const peer = script('fake-peer', ['echo "hello from the peer" >&2', 'printf "\\033[31mred\\033[0m \\033]0;new title\\007 \\033[2J" >&2', 'exit 3'].join('\n'));
    const r = await swarmpay(['--datadir', datadir, '--tpm', 'none', 'escrow', 'accept', '--peer-cmd', `'${peer}' --stdio`, '--max-price', '100', '--passphrase-file', pass]);
    expect(r.code).toBe(4);
    // stdout: the one JSON document, nothing of the peer's.
    expect(r.stdout.trim().split('\n')).toHaveLength(1);
    expect(r.json.error).toMatchObject({ code: 'PEER_UNREACHABLE' });
    const lines = r.stderr.split('\n').filter((l) => l !== '' && !l.startsWith('warning: '));
    // NO_COLOR: its colours dropped; the title and clear-screen sequences shown, not done.
    expect(lines).toEqual(['[fake-peer] hello from the peer', '[fake-peer] red ^[]0;new title^G ^[[2J']);
  });
});
