/** Glue between commander and a command's handler: one Context per run, closed after. */
import type { Command } from 'commander';
import { Context, type GlobalOptions } from './context.js';

export type Handler<O> = (ctx: Context, args: string[], opts: O) => Promise<void>;

// commander calls an action with (…positionals, options, command); only the last matters here.
export function withContext<O>(handler: Handler<O>): (...a: unknown[]) => Promise<void> {
  return async (...a: unknown[]) => {
    const cmd = a[a.length - 1] as Command;
    const ctx = new Context(cmd.optsWithGlobals<GlobalOptions>());
    try {
      await handler(ctx, cmd.args, cmd.opts() as O);
    } finally {
      await ctx.close();
    }
  };
}
