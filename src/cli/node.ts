/** `swarmpay node start|stop|status|mine`: the embedded regtest node. */
import type { Command } from 'commander';
import { SwarmpayError } from '../errors.js';
import { RegtestNode, type NodeImpl } from '../api/node.js';
import { swtpmDir } from '../tpm/swtpm-process.js';
import { withContext } from './command.js';
import type { Context } from './context.js';
import { parseCount } from './args.js';

function regtestNode(ctx: Context): RegtestNode {
  return new RegtestNode(ctx.opts);
}

export function registerNode(program: Command): void {
  const node = program.command('node').description('the embedded regtest node: a real btcd run as a daemon on loopback');

  node
    .command('start')
    .description('start the regtest node (mines to segwit activation on a fresh chain)')
    .option('--impl <impl>', 'node implementation: btcd or bitcoind', 'btcd')
    .action(
      withContext<{ impl: string }>(async (ctx, _args, opts) => {
        if (opts.impl !== 'btcd' && opts.impl !== 'bitcoind') throw new SwarmpayError('USAGE', `unknown --impl "${opts.impl}"`, { hint: 'use btcd or bitcoind' });
        const impl: NodeImpl = opts.impl;
        ctx.out.progress(`starting ${impl}…`);
        const { tpmUnavailable, ...r } = await regtestNode(ctx).start(impl);
        if (tpmUnavailable) ctx.out.warn(`no software TPM: ${tpmUnavailable.message}; ${tpmUnavailable.hint ?? ''}`);
        const tpm = r.tpm;
        ctx.out.result(r, [
          `${r.alreadyRunning ? 'already running' : 'started'}: ${r.impl} pid ${r.pid}, height ${r.height}`,
          `rpc:    ${r.rpcUrl}`,
          `cookie: ${r.rpcCookie}`,
          `tpm:    ${tpm ? `swtpm:${tpm.host}:${tpm.port} (state in ${swtpmDir(ctx.networkDir)})` : 'none'}`,
          ...(tpm?.ekCa ? [`EK CA:  ${tpm.ekCa} (for a verifier's \`tpm enroll --tpm-ca\`)`] : []),
          `other datadirs reach it with: --rpc-url ${r.rpcUrl} --rpc-cookie ${r.rpcCookie}`,
        ]);
      }),
    );

  node
    .command('stop')
    .description('stop the regtest node')
    .action(
      withContext(async (ctx) => {
        const r = await regtestNode(ctx).stop();
        ctx.out.result(r, r.stopped ? 'stopped (btcd discards its regtest chain: the next start begins a fresh one; the TPM keeps its state)' : 'not running');
      }),
    );

  node
    .command('status')
    .description('whether the node runs, and its height')
    .action(
      withContext(async (ctx) => {
        const s = await regtestNode(ctx).status();
        ctx.out.result(s, s.running ? [`running: ${s.impl} pid ${s.pid}, height ${s.height}`, `rpc: ${s.rpcUrl}`, `tpm: ${s.tpm ? `swtpm:${s.tpm.host}:${s.tpm.port}` : 'none'}`] : 'not running (start it with `swarmpay node start`)');
      }),
    );

  node
    .command('mine')
    .description('mine blocks on regtest; --to pays ADDR those blocks\' rewards from the faucet')
    .argument('<blocks>', 'how many blocks (1 to 1000)')
    .option('--to <address>', 'pay this address the block rewards, confirmed by these blocks')
    .action(
      withContext<{ to?: string }>(async (ctx, args, opts) => {
        const blocks = parseCount(args[0] ?? '', 'blocks', 1, 1000);
        const r = await regtestNode(ctx).mine(blocks, opts.to);
        const lines = [`mined ${r.blocks} block(s); height ${r.height}`];
        if (r.paid) lines.push(`paid ${r.paid.sats} sats to ${r.paid.address} in ${r.paid.txid}`);
        ctx.out.result({ ...r }, lines);
      }),
    );
}
