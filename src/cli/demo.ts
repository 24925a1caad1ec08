/** `swarmpay demo`: the whole story on embedded defaults. */
import type { Command } from 'commander';
import { withContext } from './command.js';

export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description('run the whole story on a fresh regtest node in a temporary folder')
    .option('--keep', 'keep the temporary folder and leave its node and TPM running, to look around afterwards')
    .action(
      withContext<{ keep?: boolean }>(async (ctx, _args, opts) => {
        const { runDemo } = await import('../demo/story.js');
        const r = await runDemo({ keep: !!opts.keep, onStep: (m) => ctx.out.info(`• ${m}`) });
        ctx.out.result(r, [
          `escrow ${r.escrow.offer_id}: funded ${r.escrow.funding_txid}, claimed ${r.escrow.claim_txid}, item ${r.escrow.item_matches ? 'matches' : 'DOES NOT MATCH'}`,
          `channel ${r.channel.channel_id}: ${r.channel.payments} payments, ${r.channel.paid_sats} sats, ${r.channel.payments_per_sec}/s, closed ${r.channel.close_txid}`,
          `buyer:  ${r.balances.buyer_sats} sats`,
          `seller: ${r.balances.seller_sats} sats`,
          `done in ${r.seconds.toFixed(1)} s${r.workDir ? `; kept ${r.workDir} (stop its node and TPM with: swarmpay node stop --datadir ${r.workDir}/seller)` : ''}`,
        ]);
      }),
    );
}
