/** The commander program: the global options (README "Global options", man page) and one registration per command group. */
import { Command, Option } from 'commander';
import { NETWORK_NAMES } from '../bitcoin/network-names.js';
import { CHAIN_KINDS } from '../chain/backend.js';
import { registerNode } from './node.js';
import { registerWallet } from './wallet.js';
import { registerDemo } from './demo.js';
import { registerTpm } from './tpm.js';
import { registerChannel } from './channel.js';
import { registerEscrow } from './escrow.js';
import { registerCompletion } from './completion.js';
import { registerInfo } from './info.js';
import { configureHelp, finishHelp } from './help.js';

const VERSION = '0.1.0';

export function buildProgram(): Command {
  const program = new Command('swarmpay')
    .description('wallet and escrow toolkit for devices that pay each other: fair exchange, payment channels, TPM-sealed keys')
    .version(VERSION)
    .addOption(new Option('--network <network>', 'Bitcoin network (default: $SWARMPAY_NETWORK, network= in swarmpay.conf, else regtest)').choices(NETWORK_NAMES))
    .option('--datadir <dir>', 'where keystore, node and state live, one folder per network (default: $SWARMPAY_DATADIR or ~/.swarmpay)')
    .addOption(new Option('--chain <backend>', 'chain backend (default: embedded on regtest, bitcoind elsewhere; btcd with --rpc-url on regtest)').choices(CHAIN_KINDS))
    .option('--rpc-url <url>', 'JSON-RPC URL of a btcd or Bitcoin Core node')
    .option('--rpc-cookie <file>', 'RPC cookie file ("user:password")')
    .option('--tpm <spec>', 'which TPM: auto, swtpm:HOST:PORT, device:/dev/tpmrm0 or none (auto, the default: /dev/tpmrm0, else on regtest the software TPM `node start` runs)')
    .option('--json', 'print one JSON document on stdout, nothing else there')
    .option('-y, --yes', 'go ahead without asking (the yes to channel open; never prompt); prompts need stdin and stderr on a terminal')
    .showSuggestionAfterError()
    .exitOverride()
    .configureOutput({ outputError: () => {} });
  configureHelp(program);
  registerInfo(program);
  registerNode(program);
  registerWallet(program);
  registerTpm(program);
  registerChannel(program);
  registerEscrow(program);
  registerDemo(program);
  registerCompletion(program);
  finishHelp(program);
  return program;
}
