/** Entry point: parse, run, print the error if any, and return the exit code. */
import { CommanderError } from 'commander';
import { SwarmpayError } from '../errors.js';
import { buildProgram } from './program.js';
import { Cancelled } from './prompt.js';
import { EXIT_CANCELLED, EXIT_OK } from './exit-codes.js';

/**
 * A reader that went away (`… | head`, a jq that failed) closes stdout: what is left to print
 * has nowhere to go, which is no failure of the command. Without a listener Node throws the
 * EPIPE with a stack; the command runs on and exits as it would have.
 */
function ignoreClosedStdout(): void {
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code !== 'EPIPE') throw e;
  });
}

/** Where an error is printed: loaded when there is one, as most runs end without (output.ts brings the colours). */
async function errorOutput(argv: string[]) {
  const { Output } = await import('./output.js');
  return new Output(argv.includes('--json'));
}

export async function main(argv: string[]): Promise<number> {
  ignoreClosedStdout();
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return EXIT_OK;
  } catch (e) {
    if (e instanceof Cancelled) {
      // The user's own Ctrl-C: one line, on the terminal they pressed it at, whatever --json says.
      process.stderr.write(`${e.message}\n`);
      return EXIT_CANCELLED;
    }
    if (e instanceof CommanderError) {
      // Help and --version are not errors; a bare group (`swarmpay wallet`) has printed its help.
      if (e.exitCode === 0 || e.code === 'commander.help' || e.code === 'commander.helpDisplayed' || e.code === 'commander.executeSubCommandAsync') return e.exitCode;
      return (await errorOutput(argv)).error(new SwarmpayError('USAGE', e.message.replace(/^error: /, ''), { hint: 'see `swarmpay --help`' }));
    }
    return (await errorOutput(argv)).error(e);
  }
}

/** Runs the command and exits with its code once stdout has drained, so that piped JSON is never cut short. */
export async function runAndExit(argv: string[]): Promise<void> {
  const code = await main(argv);
  process.stdout.write('', () => process.exit(code));
}
