/** The commander program: global options of CLI.md and one registration per command group. */
import { Command, Option } from 'commander';
import { NETWORK_NAMES } from '../bitcoin/network.js';
import { CHAIN_KINDS } from '../api/environment.js';
import { registerNode } from './node.js';
import { registerWallet } from './wallet.js';
import { registerDemo } from './demo.js';
import { registerTpm } from './tpm.js';
import { registerChannel } from './channel.js';
import { registerEscrow } from './escrow.js';
import { registerCompletion } from './completion.js';

const VERSION = '0.1.0';

export function buildProgram(): Command {
  const program = new Command('swarmpay')
    .description('wallet and escrow toolkit for devices that pay each other: fair exchange, payment channels, TPM-sealed keys')
    .version(VERSION)
    .addOption(new Option('--network <network>', 'Bitcoin network').choices(NETWORK_NAMES).default('regtest'))
    .option('--datadir <dir>', 'where keystore, node and state live, one folder per network (default: $SWARMPAY_DATADIR or ~/.swarmpay)')
    .addOption(new Option('--chain <backend>', 'chain backend (default: embedded on regtest, bitcoind elsewhere; btcd with --rpc-url on regtest)').choices(CHAIN_KINDS))
    .option('--rpc-url <url>', 'JSON-RPC URL of a btcd or Bitcoin Core node')
    .option('--rpc-cookie <file>', 'RPC cookie file ("user:password")')
    .option('--tpm <spec>', 'which TPM: auto, swtpm:HOST:PORT, device:/dev/tpmrm0 or none (auto: /dev/tpmrm0, else the software TPM `node start` runs)', 'auto')
    .option('--json', 'print one JSON document on stdout, nothing else there')
    .option('-y, --yes', 'never prompt (also the case when stdin is not a terminal)')
    .showSuggestionAfterError()
    .exitOverride()
    .configureOutput({ outputError: () => {} });
  registerNode(program);
  registerWallet(program);
  registerTpm(program);
  registerChannel(program);
  registerEscrow(program);
  registerDemo(program);
  registerCompletion(program);
  return program;
}
