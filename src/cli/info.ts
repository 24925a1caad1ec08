/** `swarmpay info`: network, node, wallet, TPM, channels and escrows on one screen; a part that cannot be read says why. */
import type { Command } from 'commander';
import type { ContractsPart, NodePart, Overview, TpmPart, Unavailable, WalletPart } from '../api/info.js';
import { withContext } from './command.js';
import { cliStart } from './start.js';

function why(u: Unavailable): string {
  return `${u.error.code}: ${u.error.message}`;
}

function nodeLine(n: NodePart): string {
  if (n.state === 'running') return `${n.backend} at ${n.url}, height ${n.height}, ${n.peers} peer${n.peers === 1 ? '' : 's'}`;
  return `${n.backend ?? 'unknown backend'}: not reachable (${why(n)})`;
}

function walletLines(w: WalletPart): string[] {
  if (w.state === 'none') return ['none (create one with `swarmpay wallet create`)'];
  if (w.state === 'unavailable') return [`unreadable (${why(w)})`];
  const b = w.balance;
  const balance = b.state === 'known' ? `${b.confirmed} sats confirmed, ${b.unconfirmed} unconfirmed${b.immature > 0n ? `, ${b.immature} immature` : ''}` : `unknown (${b.error.code})`;
  return [`fingerprint ${w.fingerprint}, ${w.protector === 'tpm' ? 'sealed by the TPM' : 'passphrase'}`, `balance ${balance}`];
}

function tpmLine(t: TpmPart): string {
  if (t.state === 'unavailable') return `${t.tpm ?? 'none'}: not usable (${why(t)})`;
  const k = t.keystore;
  const keystore = !k.exists
    ? 'no keystore'
    : k.protector === 'passphrase'
      ? 'keystore not sealed'
      : `keystore sealed, counter ${k.fileCounter}${k.tpmCounter === undefined ? '' : ` (TPM ${k.tpmCounter}, ${k.counterState})`}, ${k.pcrs.length ? `bound to PCRs ${k.pcrs.join(',')}` : 'no PCR binding'}`;
  return `${t.tpm ?? 'none'}; ${keystore}`;
}

function contractsLine(c: ContractsPart): string {
  switch (c.state) {
    case 'none':
      return 'none (no wallet)';
    case 'locked':
      return 'locked (give --passphrase-file to count them)';
    case 'unavailable':
      return `unreadable (${why(c)})`;
    case 'counted':
      return c.total === 0 ? 'none' : Object.entries(c.byStatus).map(([status, n]) => `${n} ${status}`).join(', ');
  }
}

function cliLine(c: ReturnType<typeof cliStart>): string {
  return c.start === 'snapshot' ? `started from its start-up snapshot, on Node ${c.node}` : `started from its ES modules, on Node ${c.node} (\`npm run build\` makes a start-up snapshot for it, some 50 ms faster)`;
}

function lines(o: Overview, cli: ReturnType<typeof cliStart>): string[] {
  const [first, ...rest] = walletLines(o.wallet);
  return [
    `network   ${o.network} (datadir ${o.datadir}${o.config ? `, config ${o.config}` : ''})`,
    `node      ${nodeLine(o.node)}`,
    `wallet    ${first}`,
    ...rest.map((l) => `          ${l}`),
    `tpm       ${tpmLine(o.tpm)}`,
    `channels  ${contractsLine(o.channels)}`,
    `escrows   ${contractsLine(o.escrows)}`,
    `cli       ${cliLine(cli)}`,
  ];
}

export function registerInfo(program: Command): void {
  program
    .command('info')
    .description('network, node, wallet, TPM, channels and escrows at a glance, and how the CLI started; a part that cannot be read says why (exit 0)')
    .option('--passphrase-file <file>', 'count the channels and escrows of a passphrase keystore (read from FILE, - for stdin); never prompts')
    .action(
      withContext<{ passphraseFile?: string }>(async (ctx, _args, opts) => {
        const file = opts.passphraseFile;
        const o = await ctx.swarmpay.overview(file === undefined ? {} : { passphrase: () => ctx.prompt.passphrase(file) });
        const cli = cliStart();
        ctx.out.result({ ...o, cli }, lines(o, cli));
      }),
    );
}
