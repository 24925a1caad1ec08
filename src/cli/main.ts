/** Entry point: parse, run, print the error if any, and return the exit code. */
import { CommanderError } from 'commander';
import { SwarmpayError } from '../errors.js';
import { buildProgram } from './program.js';
import { Output } from './output.js';
import { EXIT_OK } from './exit-codes.js';

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return EXIT_OK;
  } catch (e) {
    if (e instanceof CommanderError) {
      // Help and --version are not errors; a bare group (`swarmpay wallet`) has printed its help.
      if (e.exitCode === 0 || e.code === 'commander.help' || e.code === 'commander.helpDisplayed' || e.code === 'commander.executeSubCommandAsync') return e.exitCode;
      return new Output(argv.includes('--json')).error(new SwarmpayError('USAGE', e.message.replace(/^error: /, ''), { hint: 'see `swarmpay --help`' }));
    }
    return new Output(argv.includes('--json')).error(e);
  }
}
