/** `swarmpay node start|stop|status|credentials|mine`: the embedded regtest node. */
import type { Command } from 'commander';
import { SwarmpayError } from '../errors.js';
import type { NodeImpl, RegtestNode, Shared } from '../api/node.js';
import { withContext } from './command.js';
import type { Context } from './context.js';
import { parseCount } from './args.js';

async function regtestNode(ctx: Context): Promise<RegtestNode> {
  const { RegtestNode } = await import('../api/node.js');
  return new RegtestNode(ctx.opts);
}

/** Who may read `file` besides its owner, and a warning when the group cannot reach it yet. */
function shareLine(ctx: Context, share: Shared | null, file: string): string {
  if (share === null) return 'shared: no (owner only; --share-group GROUP shares it)';
  if (share.closedFolder !== null) ctx.out.warn(`members of ${share.group} cannot enter ${share.closedFolder}, so cannot reach ${file}: \`chmod o+x ${share.closedFolder}\` (or give it to the group with g+x), or use a datadir outside it`);
  return `shared: readable by group ${share.group} (gid ${share.gid})`;
}

export function registerNode(program: Command): void {
  const node = program.command('node').description('the embedded regtest node: a real btcd run as a daemon on loopback');

  node
    .command('start')
    .description('start the regtest node (mines to segwit activation on a fresh chain)')
    .option('--impl <impl>', 'node implementation: btcd or bitcoind', 'btcd')
    .option('--share-group <group>', 'let this group read the RPC cookie (0640) and enter the folders to it (0710); default: owner only')
    .action(
      withContext<{ impl: string; shareGroup?: string }>(async (ctx, _args, opts) => {
        if (opts.impl !== 'btcd' && opts.impl !== 'bitcoind') throw new SwarmpayError('USAGE', `unknown --impl "${opts.impl}"`, { hint: 'use btcd or bitcoind' });
        const impl: NodeImpl = opts.impl;
        ctx.out.progress(`starting ${impl}…`);
        const { tpmUnavailable, ...r } = await (await regtestNode(ctx)).start(impl, opts.shareGroup === undefined ? {} : { shareGroup: opts.shareGroup });
        if (tpmUnavailable) ctx.out.warn(`no software TPM: ${tpmUnavailable.message}; ${tpmUnavailable.hint ?? ''}`);
        const tpm = r.tpm;
        const { swtpmDir } = await import('../tpm/swtpm-process.js');
        ctx.out.result(r, [
          `${r.alreadyRunning ? 'already running' : 'started'}: ${r.impl} pid ${r.pid}, height ${r.height}`,
          `rpc:    ${r.rpcUrl}`,
          `cookie: ${r.rpcCookie}`,
          shareLine(ctx, r.share, r.rpcCookie),
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
        const r = await (await regtestNode(ctx)).stop();
        ctx.out.result(r, r.stopped ? 'stopped (btcd discards its regtest chain: the next start begins a fresh one; the TPM keeps its state)' : 'not running');
      }),
    );

  node
    .command('status')
    .description('whether the node runs, and its height')
    .action(
      withContext(async (ctx) => {
        const s = await (await regtestNode(ctx)).status();
        ctx.out.result(s, s.running ? [`running: ${s.impl} pid ${s.pid}, height ${s.height}`, `rpc: ${s.rpcUrl}`, `tpm: ${s.tpm ? `swtpm:${s.tpm.host}:${s.tpm.port}` : 'none'}`] : 'not running (start it with `swarmpay node start`)');
      }),
    );

  node
    .command('credentials')
    .description("write the running node's RPC credentials to a file, for another user's --rpc-cookie")
    .requiredOption('--out <file>', 'where to write them (mode 0600; valid until the node stops)')
    .option('--share-group <group>', 'let this group read the file (0640)')
    .action(
      withContext<{ out: string; shareGroup?: string }>(async (ctx, _args, opts) => {
        const r = (await regtestNode(ctx)).credentials(opts.out, opts.shareGroup === undefined ? {} : { shareGroup: opts.shareGroup });
        ctx.out.result(r, [
          `wrote ${r.file}: the node's RPC credentials, valid until it stops`,
          shareLine(ctx, r.share, r.file),
          `another user reaches the node with: ${r.chain === 'btcd' ? '' : '--chain bitcoind '}--rpc-url ${r.rpcUrl} --rpc-cookie FILE (their copy of it)`,
        ]);
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
        const r = await (await regtestNode(ctx)).mine(blocks, opts.to);
        const lines = [`mined ${r.blocks} block(s); height ${r.height}`];
        if (r.paid) lines.push(`paid ${r.paid.sats} sats to ${r.paid.address} in ${r.paid.txid}`);
        ctx.out.result({ ...r }, lines);
      }),
    );
}
