/** `swarmpay node start|stop|status|mine`: the embedded regtest node. */
import type { Command } from 'commander';
import { SwarmpayError } from '../errors.js';
import { startNode, stopNode, readNodeState, embeddedRpc, type NodeImpl } from '../chain/embedded-node.js';
import { FAUCET_ADDRESS, faucetPay, regtestSubsidy } from '../wallet/faucet.js';
import { runningSwtpm, startSwtpm, stopSwtpm, swtpmDir, type SwtpmState } from '../tpm/swtpm-process.js';
import { withContext } from './command.js';
import type { Context } from './context.js';
import { parseCount } from './args.js';

/**
 * The regtest "device" TPM: swtpm with its state under the datadir. Without swtpm the
 * node still runs and the keystore falls back to its passphrase, with a warning.
 */
async function startDeviceTpm(ctx: Context): Promise<SwtpmState | null> {
  try {
    return (await startSwtpm(swtpmDir(ctx.networkDir))).state;
  } catch (e) {
    if (!(e instanceof SwarmpayError && e.code === 'TPM_UNAVAILABLE')) throw e;
    ctx.out.warn(`no software TPM: ${e.message}; ${e.hint ?? ''}`);
    return null;
  }
}

function requireRegtest(ctx: Context): void {
  if (ctx.network !== 'regtest') {
    throw new SwarmpayError('NOT_REGTEST', `the embedded node and mining are for regtest, not ${ctx.network}`, { hint: 'run a full node for other networks and use --chain bitcoind' });
  }
}

export function registerNode(program: Command): void {
  const node = program.command('node').description('the embedded regtest node: a real btcd run as a daemon on loopback');

  node
    .command('start')
    .description('start the regtest node (mines to segwit activation on a fresh chain)')
    .option('--impl <impl>', 'node implementation: btcd or bitcoind', 'btcd')
    .action(
      withContext<{ impl: string }>(async (ctx, _args, opts) => {
        requireRegtest(ctx);
        if (opts.impl !== 'btcd' && opts.impl !== 'bitcoind') throw new SwarmpayError('USAGE', `unknown --impl "${opts.impl}"`, { hint: 'use btcd or bitcoind' });
        ctx.out.progress(`starting ${opts.impl}…`);
        const r = await startNode(ctx.nodeDir, opts.impl as NodeImpl, FAUCET_ADDRESS);
        const tpm = await startDeviceTpm(ctx);
        const doc = { running: true, alreadyRunning: r.alreadyRunning, impl: r.state.impl, pid: r.state.pid, height: r.height, rpcUrl: r.state.rpcUrl, rpcCookie: r.state.cookieFile, miningAddress: r.state.miningAddress, tpm };
        ctx.out.result(doc, [
          `${r.alreadyRunning ? 'already running' : 'started'}: ${r.state.impl} pid ${r.state.pid}, height ${r.height}`,
          `rpc:    ${r.state.rpcUrl}`,
          `cookie: ${r.state.cookieFile}`,
          `tpm:    ${tpm ? `swtpm:${tpm.host}:${tpm.port} (state in ${swtpmDir(ctx.networkDir)})` : 'none'}`,
          ...(tpm?.ekCa ? [`EK CA:  ${tpm.ekCa} (for a verifier's \`tpm enroll --tpm-ca\`)`] : []),
          `other datadirs reach it with: --rpc-url ${r.state.rpcUrl} --rpc-cookie ${r.state.cookieFile}`,
        ]);
      }),
    );

  node
    .command('stop')
    .description('stop the regtest node')
    .action(
      withContext(async (ctx) => {
        const r = await stopNode(ctx.nodeDir);
        const t = await stopSwtpm(swtpmDir(ctx.networkDir));
        ctx.out.result({ stopped: r.wasRunning, tpmStopped: t.wasRunning }, r.wasRunning ? 'stopped (btcd discards its regtest chain: the next start begins a fresh one; the TPM keeps its state)' : 'not running');
      }),
    );

  node
    .command('status')
    .description('whether the node runs, and its height')
    .action(
      withContext(async (ctx) => {
        const state = readNodeState(ctx.nodeDir);
        let height: number | null = null;
        try {
          const { client } = embeddedRpc(ctx.nodeDir);
          try {
            height = await client.call<number>('getblockcount');
          } finally {
            client.close();
          }
        } catch (e) {
          if (!(e instanceof SwarmpayError && (e.code === 'NODE_UNREACHABLE' || e.code === 'RPC_AUTH'))) throw e;
        }
        const running = height !== null;
        const sw = runningSwtpm(swtpmDir(ctx.networkDir));
        ctx.out.result(
          { running, impl: state?.impl ?? null, pid: running ? state!.pid : null, height, rpcUrl: running ? state!.rpcUrl : null, rpcCookie: running ? state!.cookieFile : null, tpm: sw ? { host: sw.host, port: sw.port, pid: sw.pid } : null },
          running
            ? [`running: ${state!.impl} pid ${state!.pid}, height ${height}`, `rpc: ${state!.rpcUrl}`, `tpm: ${sw ? `swtpm:${sw.host}:${sw.port}` : 'none'}`]
            : 'not running (start it with `swarmpay node start`)',
        );
      }),
    );

  node
    .command('mine')
    .description('mine blocks on regtest; --to pays ADDR those blocks\' rewards from the faucet')
    .argument('<blocks>', 'how many blocks (1 to 1000)')
    .option('--to <address>', 'pay this address the block rewards, confirmed by these blocks')
    .action(
      withContext<{ to?: string }>(async (ctx, args, opts) => {
        requireRegtest(ctx);
        const blocks = parseCount(args[0]!, 'blocks', 1, 1000);
        const chain = ctx.env.chain();
        let paid: { address: string; sats: bigint; txid: string } | null = null;
        if (opts.to !== undefined) {
          const tip = await chain.tipHeight();
          let sats = 0n;
          for (let h = tip + 1; h <= tip + blocks; h++) sats += regtestSubsidy(h);
          const tx = await faucetPay(chain, opts.to, sats);
          paid = { address: opts.to, sats, txid: tx.txid };
        }
        const hashes = await chain.mine(blocks);
        const height = await chain.tipHeight();
        const lines = [`mined ${hashes.length} block(s); height ${height}`];
        if (paid) lines.push(`paid ${paid.sats} sats to ${paid.address} in ${paid.txid}`);
        ctx.out.result({ blocks: hashes.length, height, lastBlock: hashes[hashes.length - 1], paid }, lines);
      }),
    );
}
