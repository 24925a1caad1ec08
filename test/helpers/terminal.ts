/** A command at a real pseudo-terminal (util-linux `script`), typed at as an operator would. */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { ROOT, until } from './cli.js';

const BIN = path.join(ROOT, 'bin', 'swarmpay');

/** Text as a reader sees it on the terminal: no colours, no cursor moves. */
export const plain = (s: string) => s.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '').replace(/\r/g, '');

/**
 * `line` (bash) run by `script` in a pseudo-terminal: stdin, stdout and stderr are the
 * terminal unless the line redirects them. Keys typed after a prompt shows go to it.
 */
export function atTerminal(line: string) {
  const child = spawn('script', ['-qfec', line, '/dev/null'], { env: { ...process.env, SHELL: '/bin/bash', NO_COLOR: '1' }, stdio: ['pipe', 'pipe', 'pipe'] });
  let screen = '';
  child.stdout.on('data', (d: Buffer) => (screen += d.toString()));
  child.stderr.on('data', (d: Buffer) => (screen += d.toString()));
  const exit = new Promise<number>((resolve) => child.on('close', (code) => resolve(code ?? -1)));
  return {
    screen: () => plain(screen),
    /** Waits for the terminal to show `prompt`, then types `keys`. */
    async type(prompt: string, keys: string): Promise<void> {
      await until(() => plain(screen).includes(prompt), 30_000).catch(() => {
        throw new Error(`the terminal never showed "${prompt}"; it shows:\n${plain(screen)}`);
      });
      child.stdin.write(keys);
    },
    exit,
  };
}

/** A swarmpay command line for bash, every argument quoted. */
export const cmd = (args: string[]) => [BIN, ...args].map((a) => `'${a}'`).join(' ');
