/**
 * Glue between commander and a command's handler: one Context per run, closed after. The
 * Context, and with it the library, is loaded when a command runs, not when the program is
 * defined: `--version`, help and usage errors never load the Bitcoin libraries.
 */
import type { Command } from 'commander';
import type { Context, GlobalOptions } from './context.js';

export type Handler<O> = (ctx: Context, args: string[], opts: O) => Promise<void>;

// commander calls an action with (…positionals, options, command); only the last matters here.
export function withContext<O>(handler: Handler<O>): (...a: unknown[]) => Promise<void> {
  return async (...a: unknown[]) => {
    const cmd = a[a.length - 1] as Command;
    const { Context } = await import('./context.js');
    const ctx = new Context(cmd.optsWithGlobals<GlobalOptions>());
    try {
      await handler(ctx, cmd.args, cmd.opts() as O);
    } finally {
      await ctx.close();
    }
  };
}
