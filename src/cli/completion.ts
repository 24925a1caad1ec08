/** `swarmpay completion <shell>`: prints the completion script shipped in completions/. */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { SwarmpayError } from '../errors.js';

export const SHELLS = ['bash', 'zsh', 'fish'] as const;

function completionFile(shell: string): string {
  return fileURLToPath(new URL(`../../completions/swarmpay.${shell}`, import.meta.url));
}

export function registerCompletion(program: Command): void {
  program
    .command('completion')
    .description('print the shell completion script (bash, zsh or fish)')
    .argument('<shell>', 'bash, zsh or fish')
    .action((shell: string) => {
      if (!(SHELLS as readonly string[]).includes(shell)) throw new SwarmpayError('USAGE', `no completion for "${shell}"`, { hint: `use one of: ${SHELLS.join(', ')}` });
      process.stdout.write(readFileSync(completionFile(shell), 'utf8'));
    });
}
